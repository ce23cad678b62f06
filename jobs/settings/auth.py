"""``auth``: the API's tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class ApiTokenSettings(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    """Who holds the token; shown in logs instead of the token."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Hex SHA-256 of the token (the token itself is never stored): e.g.
    ``printf %s "$TOKEN" | sha256sum``."""

    scopes: list[Literal["builds:read", "builds:write"]] = ["builds:read"]
    """What the token may do: ``builds:read`` (builds, logs, images) and
    ``builds:write`` (request and cancel builds)."""


class AuthSettings(Section):
    tokens: list[ApiTokenSettings] = []
    """API tokens, sent as ``Authorization: Bearer <token>``."""

    open_read: bool = False
    """Let anyone read builds, logs and images without a token (for development)."""
