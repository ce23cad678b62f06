"""JupyterHub as an authenticator: hub API tokens and the hub's OAuth login (issue 7).

A request is a hub user's (or hub service's) when it carries a hub token, in
``Authorization: token|Bearer <t>`` or, for GET and HEAD only, in the session cookie
that the OAuth login sets. The hub says who owns a token and what it may do
(``GET <api_url>/user``, ``webhook.hub_api``); that answer is remembered
``cache_seconds``, keyed by the token's SHA-256 so that no token is kept in memory as a
dict key.

Guarantees:

- a token the hub does not know is "not mine" (the auth seam turns it into 401), a
  token without an access scope is 403, and a hub that cannot be reached is 503: never
  taken for "no such token";
- the cookie is HMAC-signed, ``HttpOnly``, ``SameSite=Lax`` and scoped to the base
  path. It authenticates only GET and HEAD: anything that changes state needs the
  Authorization header, so a cross-site form cannot spend a session. The one GET that
  starts builds, the BinderHub stream, needs ``Accept: text/event-stream``, which a
  cross-site navigation cannot send;
- the OAuth ``state`` is random, kept in a signed short-lived cookie and compared at the
  callback; the callback only ever redirects to a path under the base path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from jobs.settings import ConfigError, Settings

from .auth import READ, WRITE, Forbidden, Principal, bearer_token
from .body import sent_path
from .errors import BadRequest
from .hub_api import HubClient, HubConfig, HubIdentity, IdentityCache

log = logging.getLogger(__name__)

SESSION_COOKIE = "binderhub-service-session"
STATE_COOKIE = "binderhub-service-oauth-state"
STATE_SECONDS = 600
SAFE_METHODS = frozenset({"GET", "HEAD"})


# -- configuration (pure) -----------------------------------------------------


def resolve_base_path(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """``base_path``, else ``$JUPYTERHUB_SERVICE_PREFIX`` with ``jupyterhub.enabled``
    (single-user servers have that variable too), else ``/``; always ``/…/``."""
    path = settings.base_path
    if path is None and settings.jupyterhub.enabled:
        path = environ.get("JUPYTERHUB_SERVICE_PREFIX")
    path = path or "/"
    if not path.startswith("/"):
        raise ConfigError(f"base path {path!r} must start with /")
    return path if path.endswith("/") else path + "/"


# -- what a hub identity may do (pure) -------------------------------------


def principal_for(identity: HubIdentity, config: HubConfig) -> Principal:
    """What a hub identity may do here.

    Raises ``Forbidden`` without an access scope. With one, it may read; it may build
    too unless builds are restricted to users or groups it is not among.
    """
    who = f"{identity.kind}:{identity.name}"
    if not identity.scopes & config.access_scopes:
        wanted = " or ".join(sorted(config.access_scopes))
        raise Forbidden(f"JupyterHub {who} may not use this service (needs {wanted})")
    restricted = bool(config.allowed_users or config.allowed_groups)
    may_build = not restricted or (
        identity.kind == "user"
        and (identity.name in config.allowed_users or bool(identity.groups & config.allowed_groups))
    )
    if may_build:
        return Principal(who, frozenset({READ, WRITE}))
    return Principal(
        who,
        frozenset({READ}),
        why_not=f"JupyterHub {who} is not in jupyterhub.allowed_users or allowed_groups",
    )


# -- signed cookies (pure) -----------------------------------------------------


def sign(key: bytes, data: Mapping[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    mac = hmac.new(key, payload, "sha256").hexdigest()
    return f"{payload.decode()}.{mac}"


def unsign(key: bytes, value: str | None, now: float) -> dict[str, Any] | None:
    """The signed mapping, or None if absent, forged or past its ``exp``."""
    if not value:
        return None
    payload, _, mac = value.rpartition(".")
    expected = hmac.new(key, payload.encode(), "sha256").hexdigest()
    # bytes: compare_digest refuses str with non-ASCII characters (a cookie may hold any)
    if not payload or not hmac.compare_digest(mac.encode(), expected.encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exp"), int | float):
        return None
    return data if data["exp"] > now else None


def safe_target(target: str, base_path: str) -> str:
    """Where a login may return: a path under ``base_path``, never another site (browsers
    read ``//host`` and ``/\\host`` as one), else ``base_path`` itself."""
    if target.startswith(base_path) and target[:2] not in ("//", "/\\"):
        return target
    return base_path


# -- the authenticator and the login -----------------------------------------------


class HubAuthenticator:
    """Hub tokens (header, or the session cookie for GET and HEAD) as principals."""

    def __init__(self, config: HubConfig, client: HubClient | None = None) -> None:
        self.config = config
        self.client = client or HubClient(config)
        self._cache = IdentityCache(config.cache_seconds)

    async def identify(self, token: str) -> HubIdentity | None:
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached, identity = self._cache.get(key, now)
        if not cached:
            identity = await self.client.identify(token)
            self._cache.put(key, identity, now)
        return identity

    def session_token(self, connection: HTTPConnection) -> str | None:
        if connection.scope.get("method", "GET") not in SAFE_METHODS:
            return None
        session = unsign(
            self.config.cookie_key, connection.cookies.get(SESSION_COOKIE), time.time()
        )
        token = session.get("token") if session else None
        return token if isinstance(token, str) else None

    async def authenticate(self, connection: HTTPConnection) -> Principal | None:
        token = bearer_token(connection)
        if token is None:
            token = self.session_token(connection)
            if token is None:
                return None
        if hmac.compare_digest(token.encode(), self.config.api_token.encode()):
            return self.own_token_principal()
        identity = await self.identify(token)
        if identity is None:
            return None
        return principal_for(identity, self.config)

    def own_token_principal(self) -> Principal:
        """The hub itself, sending the token it shares with this service (the hub's
        ``extraConfig`` fetching ``/api/v1/profiles``): it may read, never build. The
        hub's ``/user`` would name this service, with none of the access scopes."""
        return Principal(f"service:{self.config.service_name}", frozenset({READ}))

    def login_redirect(self, request: HTTPConnection) -> Response:
        """Send a browser to the hub's authorize page; it comes back to ``callback``."""
        state = secrets.token_urlsafe(24)
        target = sent_path(request) + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "redirect_uri": self.config.callback_url,
                "response_type": "code",
                "state": state,
            }
        )
        response = RedirectResponse(f"{self.config.authorize_url}?{query}", status_code=302)
        value = sign(
            self.config.cookie_key,
            {"state": state, "next": target, "exp": time.time() + STATE_SECONDS},
        )
        self._set_cookie(request, response, STATE_COOKIE, value, STATE_SECONDS)
        return response

    async def callback(self, request: Request) -> Response:
        """The hub's redirect back: check the state, trade the code, start a session."""
        saved = unsign(self.config.cookie_key, request.cookies.get(STATE_COOKIE), time.time())
        state = request.query_params.get("state")
        if "error" in request.query_params:
            raise BadRequest(f"JupyterHub refused the login: {request.query_params['error']}", 403)
        if (
            saved is None
            or not state
            or not hmac.compare_digest(str(saved["state"]).encode(), state.encode())
        ):
            raise BadRequest("the login's state does not match this browser's; log in again")
        code = request.query_params.get("code")
        if not code:
            raise BadRequest("the login callback has no code")
        token, expires_in = await self.client.exchange_code(code)
        identity = await self.identify(token)
        if identity is None:
            raise BadRequest("JupyterHub does not know the token it just issued", 403)
        principal_for(identity, self.config)  # 403 now rather than on every request
        lifetime = self.config.session_seconds
        if expires_in is not None:
            lifetime = min(lifetime, int(expires_in))
        target = safe_target(str(saved.get("next") or ""), self.config.base_path)
        response = RedirectResponse(target, status_code=302)
        session = sign(self.config.cookie_key, {"token": token, "exp": time.time() + lifetime})
        self._set_cookie(request, response, SESSION_COOKIE, session, lifetime)
        response.delete_cookie(STATE_COOKIE, path=self.config.base_path)
        log.info("JupyterHub %s:%s logged in", identity.kind, identity.name)
        return response

    async def logout(self, request: Request) -> Response:
        """Ends this service's session only (not the hub's: the next visit to the page
        logs in again without a form, as long as the hub's own login lasts)."""
        response = JSONResponse({"status": "logged out"})
        response.delete_cookie(SESSION_COOKIE, path=self.config.base_path)
        return response

    def _set_cookie(
        self, request: HTTPConnection, response: Response, name: str, value: str, age: int
    ) -> None:
        secure = (
            request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
        )
        response.set_cookie(
            name,
            value,
            max_age=age,
            path=self.config.base_path,
            secure=secure,
            httponly=True,
            samesite="lax",
        )


def routes(authenticator: HubAuthenticator) -> list[BaseRoute]:
    """``oauth_callback`` and ``logout``, relative to the base path."""
    return [
        Route("/oauth_callback", authenticator.callback, methods=["GET"]),
        Route("/logout", authenticator.logout, methods=["GET"]),
    ]
