"""JupyterHub's REST API, as this service uses it.

``HubConfig``: where it is and how this service is registered there; ``HubClient``: who
owns a token (``GET <api_url>/user``,
remembered in an ``IdentityCache``), an OAuth code exchanged for a token, and whether the
hub answers at all (readiness). A hub that cannot be reached, or answers 5xx, is
``HubUnavailable`` (503): never taken for "no such token"."""

from __future__ import annotations

import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from jobs.errors import TemporaryError
from jobs.settings import ConfigError, JupyterHubSettings

from .errors import BadRequest

CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class HubConfig:
    """``JupyterHubSettings`` with every default filled in from the environment."""

    api_url: str
    api_token: str
    service_name: str
    client_id: str
    callback_url: str
    authorize_url: str
    access_scopes: frozenset[str]
    allowed_users: frozenset[str]
    allowed_groups: frozenset[str]
    cache_seconds: float
    session_seconds: int
    cookie_key: bytes
    base_path: str
    timeout: float

    @classmethod
    def resolve(
        cls, hub: JupyterHubSettings, base_path: str, environ: Mapping[str, str] = os.environ
    ) -> HubConfig:
        """Raises ``ConfigError`` naming what is missing (checked at start-up)."""
        api_url = hub.api_url or environ.get("JUPYTERHUB_API_URL")
        token = hub.api_token.get_secret_value() if hub.api_token else None
        token = token or environ.get("JUPYTERHUB_API_TOKEN")
        missing = [
            f"jupyterhub.{name} (or ${env})"
            for name, env, value in (
                ("api_url", "JUPYTERHUB_API_URL", api_url),
                ("api_token", "JUPYTERHUB_API_TOKEN", token),
            )
            if not value
        ]
        if missing or api_url is None or token is None:
            raise ConfigError(f"jupyterhub.enabled needs {' and '.join(missing)}")
        name = hub.service_name or environ.get("JUPYTERHUB_SERVICE_NAME") or "binder"
        if hub.authorize_url:
            authorize = hub.authorize_url
        elif environ.get("JUPYTERHUB_PUBLIC_HUB_URL"):
            authorize = environ["JUPYTERHUB_PUBLIC_HUB_URL"].rstrip("/") + "/api/oauth2/authorize"
        else:
            base = environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/")
            authorize = f"{base}/hub/api/oauth2/authorize"
        secret = hub.cookie_secret.get_secret_value().encode() if hub.cookie_secret else None
        return cls(
            api_url=api_url.rstrip("/"),
            api_token=token,
            service_name=name,
            client_id=hub.client_id or environ.get("JUPYTERHUB_CLIENT_ID") or f"service-{name}",
            callback_url=hub.oauth_callback_url
            or environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL")
            or f"{base_path}oauth_callback",
            authorize_url=authorize,
            access_scopes=frozenset(
                hub.access_scopes or [f"access:services!service={name}", "access:services"]
            ),
            allowed_users=frozenset(hub.allowed_users),
            allowed_groups=frozenset(hub.allowed_groups),
            cache_seconds=hub.cache_seconds,
            session_seconds=hub.session_seconds,
            # Derived, not the token itself: a leaked cookie key must not be a hub token.
            cookie_key=secret
            or hmac.new(token.encode(), b"binderhub-service cookie key", "sha256").digest(),
            base_path=base_path,
            timeout=hub.timeout,
        )


@dataclass(frozen=True)
class HubIdentity:
    """The owner of a hub token, from the hub's ``/user`` model."""

    kind: str
    name: str
    groups: frozenset[str]
    scopes: frozenset[str]

    @classmethod
    def from_model(cls, model: Mapping[str, Any]) -> HubIdentity:
        return cls(
            kind=str(model.get("kind") or "user"),
            name=str(model["name"]),
            groups=frozenset(str(g) for g in model.get("groups") or ()),
            scopes=frozenset(str(s) for s in model.get("scopes") or ()),
        )


class HubUnavailable(TemporaryError):
    """The hub did not answer (or answered 5xx): the request may work later (503 with
    ``Retry-After``)."""


class HubClient:
    """The two hub endpoints we use, over one httpx client made in the server's loop."""

    def __init__(self, config: HubConfig) -> None:
        self._config = config
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._config.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def check(self) -> None:
        """Return when the hub's API root answers 200 (it needs no token); raise
        ``HubUnavailable`` naming the hub otherwise (for readiness)."""
        url = f"{self._config.api_url}/"
        try:
            response = await self._http().get(url)
        except httpx.HTTPError as e:
            raise HubUnavailable(
                f"JupyterHub's API at {url} could not be reached: {str(e) or type(e).__name__}"
            ) from e
        if response.status_code != 200:
            raise HubUnavailable(f"JupyterHub's API at {url} answered {response.status_code}")

    async def identify(self, token: str) -> HubIdentity | None:
        """Who owns ``token``; None when the hub does not know it."""
        try:
            response = await self._http().get(
                f"{self._config.api_url}/user", headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as e:
            raise HubUnavailable(f"JupyterHub could not be reached: {e}") from e
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 200:
            raise HubUnavailable(f"JupyterHub answered {response.status_code} for a token")
        return HubIdentity.from_model(response.json())

    async def exchange_code(self, code: str) -> tuple[str, float | None]:
        """An OAuth code for (access token, seconds it lasts, if the hub says)."""
        form = {
            "client_id": self._config.client_id,
            "client_secret": self._config.api_token,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._config.callback_url,
        }
        try:
            response = await self._http().post(f"{self._config.api_url}/oauth2/token", data=form)
        except httpx.HTTPError as e:
            raise HubUnavailable(f"JupyterHub could not be reached: {e}") from e
        if response.status_code >= 500:
            raise HubUnavailable(f"JupyterHub answered {response.status_code} for a login")
        if response.status_code != 200:
            raise BadRequest("JupyterHub refused the login code; log in again", 403)
        body = response.json()
        expires = body.get("expires_in")
        return str(body["access_token"]), float(expires) if expires else None


class IdentityCache:
    """The hub's answers for ``ttl`` seconds, keyed by token digest; unknown tokens too."""

    def __init__(self, ttl: float, entries: int = CACHE_ENTRIES) -> None:
        self._ttl = ttl
        self._entries = entries
        self._data: OrderedDict[bytes, tuple[float, HubIdentity | None]] = OrderedDict()

    def get(self, key: bytes, now: float) -> tuple[bool, HubIdentity | None]:
        found = self._data.get(key)
        if found is None or found[0] <= now:
            return False, None
        return True, found[1]

    def put(self, key: bytes, identity: HubIdentity | None, now: float) -> None:
        if self._ttl <= 0:
            return
        self._data[key] = (now + self._ttl, identity)
        self._data.move_to_end(key)
        while len(self._data) > self._entries:
            self._data.popitem(last=False)
