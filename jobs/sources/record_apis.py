"""Resolve a record source to an immutable version by asking its provider's API
(issue 25): ``RecordResolver``, over an injected ``httpx.AsyncClient``.

The I/O edge of ``jobs.sources.record_versions``: this module asks, that one reads
the answers. What can go wrong in asking (no connection, a timeout, a 5xx, a 429, a
redirect off the host) is a ``ProviderUnavailable``, temporary and never taken for an
answer about the record. The API URLs are the providers' documented ones (Zenodo REST
API, Figshare API v2, Dataverse native API, Software Heritage's web API, HydroShare's
REST API, CKAN's action API, doi.org's handle proxy API).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import httpx

from ..errors import HostNotHandled, InvalidRequest, ProviderUnavailable
from .forms import parse_source
from .hg_identify import DIRECT, HgEgress, identify
from .record_versions import (
    Answer,
    check_size,
    ckan_activities,
    ckan_version,
    dataverse_version,
    doi_target,
    figshare_version,
    hydroshare_version,
    swh_version,
    zenodo_version,
)
from .records import DoiSource, RecordSource, RecordVersion

FIGSHARE_API = "https://api.figshare.com/v2"
DOI_HANDLES_API = "https://doi.org/api/handles"
MAX_REDIRECTS = 3
MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""The largest answer read (a Dataverse dataset of thousands of files is a few MB); a
host that sends more is not read further."""


def retry_after_of(response: httpx.Response, default: int) -> int:
    """The ``Retry-After`` of ``response`` in seconds when it gives a number, else
    ``default``."""
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else default


class RecordResolver:
    """Resolves ``RecordSource``s and ``DoiSource``s to ``RecordVersion``s.

    ``client``: the HTTP client (the caller's: its timeouts, proxy and CA bundle are
    the deployment's, ``providers.proxy`` and ``providers.ca_bundle``). Redirects are
    followed only within the host asked. ``max_record_bytes``: records whose files
    add up to more are refused (``RecordTooLarge``). ``retry_after``: the delay, in
    seconds, a ``ProviderUnavailable`` suggests when the provider gives none.
    ``check``: called with the record a DOI leads to before its host is asked (the
    intake's ``allowed_repos`` check: it raises to refuse). ``check_host``: awaited
    with every record before its host is asked, a DOI's included (the intake's
    ``jobs.sources.record_hosts.check_record_host``: it raises to refuse).
    ``hg``: how ``hg identify`` reaches a Mercurial repository (``HgEgress``: the
    ``proxy`` and ``ca_bundle`` the client has, given again since hg is no httpx).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_record_bytes: int | None = None,
        retry_after: int = 30,
        check: Callable[[RecordSource], None] | None = None,
        check_host: Callable[[RecordSource], Awaitable[None]] | None = None,
        hg: HgEgress = DIRECT,
    ) -> None:
        self._client = client
        self._check = check
        self._check_host = check_host
        self._max_record_bytes = max_record_bytes
        self._hg = hg
        self._retry_after = retry_after

    async def resolve(self, source: RecordSource | DoiSource) -> RecordVersion:
        """The version ``source`` names now. Raises ``RecordNotFound``,
        ``RecordTooLarge``, ``HostNotHandled`` (a DOI leading to no provider, or a
        provider not resolved yet) or ``ProviderUnavailable``."""
        if isinstance(source, DoiSource):
            source = await self.follow_doi(source)
            if self._check is not None:
                self._check(source)
        if self._check_host is not None:
            await self._check_host(source)
        version = await self._resolve_record(source)
        check_size(source, version.total_size, self._max_record_bytes)
        return version

    async def follow_doi(self, source: DoiSource) -> RecordSource:
        """The record ``source``'s DOI leads to, by doi.org; ``HostNotHandled`` naming
        the host when no provider of ours serves that URL."""
        answer = await self.get(f"{DOI_HANDLES_API}/{quote(source.doi, safe='/')}")
        url = doi_target(source.doi, answer)
        host = urlsplit(url).hostname or url[:100]
        try:
            found: object = parse_source(url)
        except InvalidRequest:
            found = None
        if not isinstance(found, RecordSource):
            raise HostNotHandled(
                f"DOI {source.doi} leads to {host}, which no provider of this service serves"
            )
        return found

    async def _resolve_record(self, source: RecordSource) -> RecordVersion:
        if source.provider == "zenodo":
            return await self._zenodo(source)
        if source.provider == "figshare":
            url = f"{FIGSHARE_API}/articles/{source.record}"
            if source.version is not None:
                url += f"/versions/{source.version}"
            return figshare_version(source, await self.get(url))
        if source.provider == "dataverse":
            path = "/api/datasets/:persistentId/"
            if source.version is not None:
                path += f"versions/{source.version}"
            answer = await self.get(
                f"https://{source.host}{path}", params={"persistentId": source.record}
            )
            return dataverse_version(source, answer)
        if source.provider == "hg":  # the repository's own server, as git's refs are
            return await identify(source, egress=self._hg)
        if source.provider == "hydroshare":
            url = f"https://{source.host}/hsapi/resource/{source.record}/scimeta/elements"
            return hydroshare_version(source, await self.get(url))
        if source.provider == "ckan":
            return await self._ckan(source)
        if source.provider == "swh":
            kind, digest = source.record.split(":")[2:4]
            path = {"rev": "revision", "dir": "directory"}[kind]
            return swh_version(
                source, await self.get(f"https://{source.host}/api/1/{path}/{digest}/")
            )
        raise HostNotHandled(f"{source.provider} records are not resolved by this service yet")

    async def _zenodo(self, source: RecordSource) -> RecordVersion:
        """A version's record id answers itself; a concept's answers (after Zenodo's
        redirect) its latest version, or, where the API does not redirect, 404 and
        then ``versions/latest`` does."""
        base = f"https://{source.host}/api/records/{source.record}"
        answer = await self.get(base)
        if answer[0] == 404:
            answer = await self.get(f"{base}/versions/latest")
        return zenodo_version(source, answer)

    async def _ckan(self, source: RecordSource) -> RecordVersion:
        """``package_show``, then ``package_activity_list`` of the dataset's id (its
        newest activity, or whether the activity asked is one of its own)."""
        api = f"https://{source.host}/api/3/action"
        package = await self.get(f"{api}/package_show", params={"id": source.record})
        body = package[1]
        dataset = body.get("result", {}).get("id") if isinstance(body, dict) else None
        activities = None
        if package[0] == 200 and isinstance(dataset, str):
            answer = await self.get(f"{api}/package_activity_list", params={"id": dataset})
            activities = ckan_activities(source, answer)
        return ckan_version(source, package, activities)

    async def get(self, url: str, params: dict[str, str] | None = None) -> Answer:
        """``GET url`` as JSON: the status and the parsed body (None when not JSON).
        Redirects within the host are followed (at most ``MAX_REDIRECTS``).
        ``ProviderUnavailable`` for a failure to ask, a 5xx or 429, or a redirect
        elsewhere."""
        host = urlsplit(url).hostname
        for _ in range(MAX_REDIRECTS + 1):
            response, body = await self._send(url, params)
            if not response.is_redirect:
                return self._answer(response, body)
            target = response.next_request.url if response.next_request else None
            if target is None or target.host != host or target.scheme != "https":
                raise ProviderUnavailable(
                    f"{host} redirected off its host", retry_after=self._retry_after
                )
            url, params = str(target), None
        raise ProviderUnavailable(f"{host} redirected more than {MAX_REDIRECTS} times")

    async def _send(self, url: str, params: dict[str, str] | None) -> tuple[httpx.Response, bytes]:
        """The response to ``GET url`` and its body, at most ``MAX_ANSWER_BYTES``."""
        host = urlsplit(url).hostname
        headers = {"Accept": "application/json"}
        try:
            async with self._client.stream(
                "GET", url, params=params, headers=headers, follow_redirects=False
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise ProviderUnavailable(
                            f"{host} answered more than {MAX_ANSWER_BYTES} bytes",
                            retry_after=self._retry_after,
                        )
                return response, bytes(body)
        except httpx.TimeoutException:
            raise ProviderUnavailable(
                f"{host} did not answer in time", retry_after=self._retry_after
            ) from None
        except httpx.HTTPError as e:
            raise ProviderUnavailable(
                f"{host} could not be reached: {type(e).__name__}", retry_after=self._retry_after
            ) from None

    def _answer(self, response: httpx.Response, content: bytes) -> Answer:
        host = response.request.url.host
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(
                f"{host} answered {response.status_code}",
                retry_after=retry_after_of(response, self._retry_after),
            )
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        return response.status_code, body
