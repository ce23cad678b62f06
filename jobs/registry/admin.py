"""What retention asks of a registry besides "does it exist": its tags, the digest of a
tag's manifest, and deleting a manifest (Docker Registry HTTP API v2; issue 26).

Distribution (``registry:2``) deletes only with ``storage.delete.enabled``; otherwise
every ``DELETE`` answers 405 (``UNSUPPORTED``), before it looks for the manifest. So
``deletion_enabled`` asks to delete a digest that cannot exist: 404 means deletion is
on, 405 that it is off. A digest is asked for with the Accept header of
``MANIFEST_ACCEPT``: without it distribution converts a schema-2 manifest to schema 1,
whose digest is not the one stored, and deleting that would fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import httpx

from ..errors import RegistryAuthError, RegistryDeletionUnsupported, RegistryError
from .client import RegistryClient

NO_SUCH_DIGEST = "sha256:" + "0" * 64
"""A digest no manifest has (its content would have to hash to zeros)."""

_PAGE = 1000


def next_link(header: str) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header (``</v2/…?last=x&n=2>;
    rel="next"``), or None. Pure."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") and target.strip().startswith("<"):
            return target.strip()[1:-1]
    return None


def references(manifest: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """What a manifest refers to: its blobs (config and layers: digest -> bytes) and,
    for an image index or manifest list, the manifests it lists (digest -> bytes).
    Entries without a digest or size are left out. Pure."""
    blobs: dict[str, int] = {}
    for entry in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
        if isinstance(entry.get("digest"), str) and isinstance(entry.get("size"), int):
            blobs[entry["digest"]] = entry["size"]
    children = {
        str(m["digest"]): int(m["size"])
        for m in manifest.get("manifests") or []
        if isinstance(m.get("digest"), str) and isinstance(m.get("size"), int)
    }
    return blobs, children


class RegistryAdmin(RegistryClient):
    """A ``RegistryClient`` that also lists tags, reads digests and deletes manifests,
    with the same credentials and login (``RegistryClient``). Every method raises
    ``RegistryError`` (``RegistryAuthError`` for refused credentials) when the registry
    cannot answer; none takes an unanswered question for "missing"."""

    async def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (``GET /v2/<repository>/tags/list``, every page
        of its ``Link`` headers), sorted; [] when the registry does not know it."""
        url: str | None = f"{self._base_url}/v2/{repository}/tags/list?n={_PAGE}"
        tags: set[str] = set()
        while url is not None:
            response = await self._call("GET", url, repository, "pull")
            if response.status_code == 404:
                return []
            self._raise_unless(response, (200,), repository)
            try:
                tags.update(str(t) for t in response.json().get("tags") or [])
            except (ValueError, AttributeError) as e:
                raise RegistryError(
                    f"registry {self._base_url} sent no tag list for {repository}"
                ) from e
            link = next_link(response.headers.get("link", ""))
            url = urljoin(self._base_url + "/", link) if link else None
        return sorted(tags)

    async def digest(self, repository: str, tag: str) -> str | None:
        """The digest of the manifest ``repository:tag`` names (its
        ``Docker-Content-Digest``), or None when there is no such tag."""
        url = f"{self._base_url}/v2/{repository}/manifests/{tag}"
        response = await self._call("HEAD", url, repository, "pull")
        if response.status_code == 404:
            return None
        self._raise_unless(response, (200,), repository)
        found = str(response.headers.get("docker-content-digest") or "")
        if not found or not found.startswith("sha256:"):
            raise RegistryError(f"registry {self._base_url} named no digest for {repository}:{tag}")
        return found

    async def blobs(self, repository: str, digest: str) -> dict[str, int]:
        """Every blob (digest -> bytes) the manifest ``digest`` of ``repository`` holds
        on to: its config and layers, and for an index those of each manifest it lists,
        and the listed manifests themselves. Raises ``RegistryError``."""
        found: dict[str, int] = {}
        pending = [digest]
        seen: set[str] = set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            url = f"{self._base_url}/v2/{repository}/manifests/{current}"
            response = await self._call("GET", url, repository, "pull")
            self._raise_unless(response, (200,), repository)
            try:
                blobs, children = references(response.json())
            except (ValueError, AttributeError) as e:
                raise RegistryError(
                    f"registry {self._base_url} sent no manifest for {repository}@{current}"
                ) from e
            found.update(blobs)
            found.update(children)
            pending.extend(children)
        return found

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        """``DELETE /v2/<repository>/manifests/<digest>``: True when deleted (202),
        False when it was not there (404: deleted already). Raises
        ``RegistryDeletionUnsupported`` when the registry does not delete."""
        url = f"{self._base_url}/v2/{repository}/manifests/{digest}"
        response = await self._call("DELETE", url, repository, "delete")
        if response.status_code == 404:
            return False
        self._raise_unless(response, (202, 200), repository)
        return True

    async def deletion_enabled(self, repository: str) -> bool:
        """Whether the registry deletes manifests in ``repository``, asked without
        deleting anything (``NO_SUCH_DIGEST``). Raises ``RegistryError`` when it
        cannot say."""
        try:
            await self.delete_manifest(repository, NO_SUCH_DIGEST)
        except RegistryDeletionUnsupported:
            return False
        return True

    async def _call(self, method: str, url: str, repository: str, action: str) -> httpx.Response:
        response, _ = await self._authorized(method, url, f"repository:{repository}:{action}")
        return response

    def _raise_unless(
        self, response: httpx.Response, expected: tuple[int, ...], repository: str
    ) -> None:
        status = response.status_code
        if status in expected:
            return
        where = f"registry {self._base_url} answered HTTP {status} for {repository}"
        if status == 405:
            raise RegistryDeletionUnsupported(
                f"{where}: it does not delete manifests (distribution: turn on "
                "storage.delete.enabled)"
            )
        if status in (401, 403):
            raise RegistryAuthError(f"{where}; check the registry credentials and their rights")
        raise RegistryError(where)
