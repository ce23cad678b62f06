"""Who is asking, and may they? The one seam every route goes through.

An ``Authenticator`` turns a request into a ``Principal`` (or None when the request
carries no credentials it knows). ``require`` asks each authenticator in turn and
then checks the scope: no credentials is 401, credentials without the scope is 403.
API tokens from the settings are one authenticator; JupyterHub tokens will be another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import HTTPConnection

from jobs.settings import AuthSettings

from .errors import BadRequest

READ = "builds:read"
WRITE = "builds:write"


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]


ANONYMOUS_READER = Principal("anonymous", frozenset({READ}))


class Authenticator(Protocol):
    async def authenticate(self, connection: HTTPConnection) -> Principal | None:
        """The principal the request's credentials name; None if it has none we know.

        Raises ``BadRequest`` (401) for credentials that are ours but wrong."""


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <t>`` (or JupyterHub's ``token <t>``)."""
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
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
        found = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if found is None:
            raise Unauthorized("invalid token")
        return found


class Auth:
    """The authenticators of one app, and whether reading is open to everyone."""

    def __init__(self, authenticators: Sequence[Authenticator], open_read: bool) -> None:
        self._authenticators = list(authenticators)
        self._open_read = open_read

    async def require(self, connection: HTTPConnection, scope: str) -> Principal:
        principal = None
        for authenticator in self._authenticators:
            principal = await authenticator.authenticate(connection)
            if principal is not None:
                break
        if principal is None:
            if scope == READ and self._open_read:
                return ANONYMOUS_READER
            raise Unauthorized(f"this needs a token with the {scope} scope")
        if scope not in principal.scopes:
            raise Forbidden(f"token {principal.name!r} lacks the {scope} scope")
        return principal


async def require(connection: HTTPConnection, scope: str) -> Principal:
    auth: Auth = connection.app.state.auth
    return await auth.require(connection, scope)
