"""Who is asking, and may they? The one seam every route goes through.

An ``Authenticator`` turns a request into a ``Principal`` (or None when the request
carries no credentials it knows). ``require`` asks each authenticator in turn and
then checks the scope: no credentials, or a token no authenticator knows, is 401;
credentials without the scope is 403. API tokens from the settings are one
authenticator; JupyterHub tokens (``webhook.hub_auth``) are another. With a login
(JupyterHub's OAuth), a browser's GET without credentials is sent to log in instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import HTTPConnection
from starlette.responses import Response

from jobs.settings import AuthSettings

from .errors import BadRequest

READ = "builds:read"
WRITE = "builds:write"


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    why_not: str = ""
    """Why a scope it lacks is missing, when there is more to say than its name."""


ANONYMOUS_READER = Principal("anonymous", frozenset({READ}))


class Authenticator(Protocol):
    async def authenticate(self, connection: HTTPConnection) -> Principal | None:
        """The principal the request's credentials name; None if it has none we know.

        A token it does not know is None too: the next authenticator may know it, and
        ``Auth.require`` answers 401 when none does. Raises ``BadRequest`` for
        credentials that are its own but unusable."""


class Login(Protocol):
    def login_redirect(self, connection: HTTPConnection) -> Response:
        """Where a browser without credentials goes to get some."""


class LoginRequired(Exception):
    """A browser's request without credentials; ``response`` sends it to log in."""

    def __init__(self, response: Response) -> None:
        super().__init__("login required")
        self.response = response


TOKEN_RE = re.compile(r"[\x21-\x7e]{1,1024}")
"""What a token is: printable ASCII (RFC 6750's token68 and more), so that it can be
hashed, compared and sent on to JupyterHub in a header (``fullmatch``)."""


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <t>`` (or JupyterHub's ``token <t>``).
    Raises ``Unauthorized`` for another scheme or a token that is not ``TOKEN_RE``."""
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    if not TOKEN_RE.fullmatch(token.strip()):
        raise Unauthorized("a token is at most 1024 printable ASCII characters")
    return token.strip()


class Unauthorized(BadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(message, 401)


class Forbidden(BadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(message, 403)


class TokenAuthenticator:
    """API tokens from the settings, stored as SHA-256 digests."""

    def __init__(self, settings: AuthSettings) -> None:
        # Keyed by digest: a lookup reveals nothing about a token that timing could
        # exploit, since an attacker cannot choose the digest of what they send.
        self._tokens = {
            bytes.fromhex(token.sha256): Principal(token.name, frozenset(token.scopes))
            for token in settings.tokens
        }

    async def authenticate(self, connection: HTTPConnection) -> Principal | None:
        token = bearer_token(connection)
        if token is None:
            return None
        return self._tokens.get(hashlib.sha256(token.encode()).digest())


class Auth:
    """The authenticators of one app, and whether reading is open to everyone."""

    def __init__(
        self,
        authenticators: Sequence[Authenticator],
        open_read: bool,
        login: Login | None = None,
    ) -> None:
        self._authenticators = list(authenticators)
        self._open_read = open_read
        self.login = login

    async def require(
        self, connection: HTTPConnection, scope: str, *, browser: bool = False
    ) -> Principal:
        """The principal, if it has ``scope``. ``browser``: a GET a person's browser
        makes (the page, the build stream), sent to log in when it has no credentials
        and there is a login."""
        principal = None
        for authenticator in self._authenticators:
            principal = await authenticator.authenticate(connection)
            if principal is not None:
                break
        if principal is None:
            if bearer_token(connection) is not None:
                raise Unauthorized("invalid token")
            if scope == READ and self._open_read:
                return ANONYMOUS_READER
            if browser and self.login is not None and connection.scope.get("method") == "GET":
                raise LoginRequired(self.login.login_redirect(connection))
            raise Unauthorized(f"this needs a token with the {scope} scope")
        if scope not in principal.scopes:
            raise Forbidden(
                principal.why_not or f"token {principal.name!r} lacks the {scope} scope"
            )
        return principal


async def require(connection: HTTPConnection, scope: str, *, browser: bool = False) -> Principal:
    auth: Auth = connection.app.state.auth
    return await auth.require(connection, scope, browser=browser)
