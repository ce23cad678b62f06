"""What a build on the Docker daemon leaves on the host's disk, cleared after each build
(issue 26): the image it built (pushed, so the registry holds it; the service asks the
registry, never the daemon, whether an image exists) and Docker's build cache beyond
``local.docker_build_cache_bytes``.

Both go through the Docker Engine API over the client of ``daemons.docker_client``:
``DELETE /images/{name}`` and ``POST /build/prune``. The bound is ``keep-storage`` up to
API 1.47 and ``max-used-space`` from 1.48 on, where ``keep-storage`` was deprecated (the
Engine API reference, "BuildPrune", v1.41 and v1.48). A failure here is logged and never
fails the build.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from ..daemons import docker_client, docker_host

log = logging.getLogger(__name__)

MAX_USED_SPACE_SINCE = (1, 48)
"""The Engine API version that bounds ``POST /build/prune`` with ``max-used-space``."""


@dataclass(frozen=True)
class DockerRequest:
    """One Engine API request: ``method``, ``path`` (after the base URL) and query
    ``params``; ``missing_ok``: a 404 answer is no failure."""

    method: str
    path: str
    params: dict[str, str]
    missing_ok: bool = False


def _version(api_version: str | None) -> tuple[int, int]:
    found = re.fullmatch(r"(\d+)\.(\d+)", (api_version or "").strip())
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def build_prune_request(api_version: str | None, keep_bytes: int) -> DockerRequest:
    """``POST /build/prune`` that leaves at most ``keep_bytes`` bytes of build cache,
    least recently used first, in use never (``all``: not only dangling records).
    ``api_version``: the daemon's (``Api-Version`` of ``/_ping``, ``"1.41"``); an
    unknown one gets ``keep-storage``, which every daemon up to 1.47 reads. Pure."""
    name = "max-used-space" if _version(api_version) >= MAX_USED_SPACE_SINCE else "keep-storage"
    return DockerRequest("POST", "/build/prune", {"all": "1", name: str(keep_bytes)})


def remove_image_request(image: str) -> DockerRequest:
    """``DELETE /images/{image}`` of a pushed image (``registry/name:tag``): the tag goes,
    and the layers no other image uses; never forced (an image a container uses stays).
    An image that is not there (a build that failed before it) is no failure. Pure."""
    return DockerRequest("DELETE", f"/images/{quote(image, safe='/:@')}", {}, missing_ok=True)


async def clean_up_after_build(
    env: Mapping[str, str], image: str, keep_bytes: int, within: float
) -> list[str]:
    """Remove ``image`` from the Docker daemon named by ``env`` and bound its build
    cache to ``keep_bytes``, each request within ``within`` seconds. Returns what
    failed, one message per request (also logged as warnings); raises nothing."""
    host = docker_host(env)
    failures: list[str] = []
    try:
        made = docker_client(env, within)
    except (OSError, ssl.SSLError) as e:
        made = None
        failures.append(f"no client for the Docker daemon at {host}: {e}")
    if made is not None:
        client, base = made
        async with client:
            version = await _api_version(client, base)
            for request in (remove_image_request(image), build_prune_request(version, keep_bytes)):
                failure = await _send(client, base, request)
                if failure:
                    failures.append(f"{request.method} {request.path} at {host}: {failure}")
    for failure in failures:
        log.warning("cleaning up after the build of %s: %s", image, failure)
    return failures


async def _api_version(client: httpx.AsyncClient, base: str) -> str | None:
    try:
        response = await client.get(f"{base}/_ping")
    except httpx.HTTPError:
        return None
    version = response.headers.get("Api-Version")
    return str(version) if version else None


async def _send(client: httpx.AsyncClient, base: str, request: DockerRequest) -> str | None:
    """None when the daemon did what ``request`` asks; else why not."""
    try:
        response = await client.request(
            request.method, f"{base}{request.path}", params=request.params
        )
    except httpx.HTTPError as e:
        return str(e) or type(e).__name__
    if response.is_success or (request.missing_ok and response.status_code == 404):
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    message = str(body.get("message", "")) if isinstance(body, dict) else response.text[:200]
    return f"HTTP {response.status_code} {message}".strip()
