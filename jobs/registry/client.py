"""Does an image exist? Asked of the registry over the Docker Registry HTTP API v2.

``HEAD /v2/<name>/manifests/<tag>``: 200 means it exists, 404 that it does not.
So does a 401 ``insufficient_scope`` to a Bearer token the token service issued for
the repository's pull scope: Docker Hub answers so for a repository that does not
exist yet, even to valid credentials. Anything else (401/403 otherwise, 5xx, a
timeout) raises: an unanswered question is never taken for "missing", or every
registry hiccup would become a rebuild.
Authentication follows the registry's ``WWW-Authenticate`` challenge: anonymous
first, then Basic, or a Bearer token from the realm it names. Credentials are asked
for at each login, so a source that re-reads a rotated file (``registry.auth``) is
followed without a restart; tokens issued to the old ones are dropped.
"""

from __future__ import annotations

import base64
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from .. import metrics
from ..errors import InvalidRequest, RegistryAuthError, RegistryError

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_POSITIVE_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class ImageRef:
    host: str
    repository: str
    tag: str


def split_image(image: str) -> ImageRef:
    """``host/path:tag`` into its parts. Pure."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag or not name:
        raise InvalidRequest(f"image {image!r} has no tag")
    host, sep, repository = name.partition("/")
    if not sep or not repository:
        raise InvalidRequest(f"image {image!r} does not name its registry host")
    return ImageRef(host, repository, tag)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` into ("bearer", {"realm": …, …}). Pure."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def _out_of_scope(response: httpx.Response) -> bool:
    """A 401 whose Bearer challenge says ``error="insufficient_scope"``. Pure."""
    if response.status_code != 401:
        return False
    scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
    return scheme == "bearer" and params.get("error") == "insufficient_scope"


class Registry(Protocol):
    """What the pipeline asks of a registry. ``RegistryClient`` is the one in use;
    ``tests/fakes`` has an in-memory one that keeps the same contract."""

    def known(self, image: str) -> bool:
        """True when the registry said yes (or ``remember`` was told) lately; no I/O."""

    def remember(self, image: str) -> None:
        """Note that ``image`` exists (a build just pushed it)."""

    def forget(self, image: str) -> None:
        """Drop what ``remember`` noted: ``image`` was deleted (``jobs.retention``)."""

    async def has_image(self, image: str, *, use_cache: bool = True) -> bool:
        """Whether ``image`` is in the registry; ``use_cache=False`` asks it even when
        ``known``. Raises ``RegistryError`` when it cannot say (never answers False)."""

    async def check(self) -> None:
        """Return when the registry answers; raise ``RegistryError`` otherwise."""

    async def aclose(self) -> None:
        """Release connections."""


Credentials = tuple[str, str] | None
"""``(user, password)``, or None for anonymous access."""


def _fixed(credentials: Credentials) -> Callable[[], Credentials]:
    return lambda: credentials


class RegistryClient:
    """Asks one registry whether images exist; remembers the answers that were yes.

    ``credentials``: fixed ``(user, password)``, or a callable answering the current
    ones (called before each login; it may raise ``RegistryAuthError``)."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | Callable[[], Credentials] = None,
        timeout: float = 10.0,
        cache_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._source = credentials if callable(credentials) else _fixed(credentials)
        self._credentials: Credentials = None
        # verify: httpx's own defaults, or a context with ca_bundle (jobs.trust)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True, verify=verify)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._known: OrderedDict[str, float] = OrderedDict()
        self._tokens: dict[str, tuple[float, str]] = {}
        self._basic_needed = False  # skip the anonymous round trip once Basic was asked for

    async def aclose(self) -> None:
        await self._client.aclose()

    def known(self, image: str) -> bool:
        """True when the registry said yes within ``cache_seconds``; no I/O."""
        seen = self._known.get(image)
        return seen is not None and self._clock() - seen <= self._cache_seconds

    def forget(self, image: str) -> None:
        """Drop the remembered "exists" answer for ``image`` (it was deleted)."""
        self._known.pop(image, None)

    def remember(self, image: str) -> None:
        self._known[image] = self._clock()
        self._known.move_to_end(image)
        while len(self._known) > _POSITIVE_CACHE_SIZE:
            self._known.popitem(last=False)

    async def has_image(self, image: str, *, use_cache: bool = True) -> bool:
        """Whether ``image`` is in the registry. Raises RegistryError if it cannot say."""
        if use_cache and self.known(image):
            return True
        ref = split_image(image)
        url = f"{self._base_url}/v2/{ref.repository}/manifests/{ref.tag}"
        scope = f"repository:{ref.repository}:pull"
        started = time.perf_counter()
        try:
            response, bearer = await self._head(url, scope)
        except RegistryError:
            metrics.REGISTRY_CHECK.labels("error").observe(time.perf_counter() - started)
            raise
        missing = response.status_code == 404 or (bearer and _out_of_scope(response))
        result = "found" if response.status_code == 200 else "missing" if missing else "error"
        metrics.REGISTRY_CHECK.labels(result).observe(time.perf_counter() - started)
        if response.status_code == 200:
            self.remember(image)
            return True
        if missing:
            return False
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"registry {self._base_url} refused access to {ref.repository} "
                f"(HTTP {response.status_code}); check the registry credentials"
            )
        raise RegistryError(
            f"registry {self._base_url} answered HTTP {response.status_code} "
            f"for {ref.repository}:{ref.tag}"
        )

    async def check(self) -> None:
        """Return when the registry answers its API root (``GET /v2/``) with 200, or
        401 (it wants credentials: it is up); raise ``RegistryError`` naming it
        otherwise. No credentials are sent and nothing is cached."""
        response = await self._send("GET", f"{self._base_url}/v2/", {})
        if response.status_code not in (200, 401):
            raise RegistryError(
                f"registry {self._base_url} answered HTTP {response.status_code} at /v2/"
            )

    async def _head(self, url: str, scope: str) -> tuple[httpx.Response, bool]:
        """The registry's last answer to HEAD ``url``, and whether that request carried
        a Bearer token the token service issued (its refusal then is not about the
        credentials, which the token service accepted)."""
        return await self._authorized("HEAD", url, scope)

    async def _authorized(
        self, method: str, url: str, scope: str, accept: str = MANIFEST_ACCEPT
    ) -> tuple[httpx.Response, bool]:
        """``method`` on ``url``, logged in as the registry's challenge asks (anonymous,
        Basic, or a Bearer token for ``scope``): its last answer, and whether that
        request carried a Bearer token."""
        headers = {"Accept": accept}
        self._refresh_credentials()
        token = self._tokens.get(scope)
        if token and token[0] > self._clock():
            headers["Authorization"] = f"Bearer {token[1]}"
        elif self._basic_needed:
            headers["Authorization"] = self._basic()
        response = await self._send(method, url, headers)
        if response.status_code != 401:
            return response, headers.get("Authorization", "").startswith("Bearer ")
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic":
            if not self._credentials:
                raise RegistryAuthError(
                    f"registry {self._base_url} requires credentials and none are configured"
                )
            headers["Authorization"] = self._basic()
            self._basic_needed = True
        elif scheme == "bearer" and params.get("realm"):
            headers["Authorization"] = f"Bearer {await self._token(params, scope)}"
        else:
            return response, False
        response = await self._send(method, url, headers)
        return response, headers["Authorization"].startswith("Bearer ")

    def _refresh_credentials(self) -> None:
        """Ask the source for the current credentials; when they changed, forget the
        tokens and the Basic shortcut that the old ones earned."""
        current = self._source()
        if current != self._credentials:
            self._credentials = current
            self._tokens.clear()
            self._basic_needed = False

    def _basic(self) -> str:
        assert self._credentials is not None
        user, password = self._credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def _token(self, challenge: dict[str, str], scope: str) -> str:
        params = {"scope": challenge.get("scope", scope)}
        if "service" in challenge:
            params["service"] = challenge["service"]
        headers = {"Authorization": self._basic()} if self._credentials else {}
        try:
            response = await self._client.get(challenge["realm"], params=params, headers=headers)
        except httpx.HTTPError as e:
            raise RegistryError(f"token service {challenge['realm']} failed: {e!r}") from e
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"token service {challenge['realm']} refused the registry credentials "
                f"(HTTP {response.status_code})"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token service {challenge['realm']} answered HTTP {response.status_code}"
            )
        try:
            body = response.json()
            token = body.get("token") or body["access_token"]
            lifetime = float(body.get("expires_in", 60))
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"token service {challenge['realm']} sent no token") from e
        self._tokens[scope] = (self._clock() + max(lifetime - 10, 1), str(token))
        return str(token)

    async def _send(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            return await self._client.request(method, url, headers=headers)
        except httpx.TimeoutException as e:
            raise RegistryError(f"registry {self._base_url} did not answer in time") from e
        except httpx.HTTPError as e:
            raise RegistryError(f"registry {self._base_url} could not be reached: {e!r}") from e
