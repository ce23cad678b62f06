"""Errors of the forge clients.

Only ``ForgeRateLimited`` (``jobs.errors``) leaves this package: a forge that refuses to
answer until a known time is a temporary error with a retry time (HTTP 503 with
``Retry-After``).
Every other API failure is a ``ForgeUnavailable``, which callers absorb: resolution
falls back to ``git ls-remote``, status reports are logged, counted and dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ForgeRateLimited

__all__ = ["ForgeRateLimited", "ForgeUnavailable", "rate_limit_error"]


class ForgeUnavailable(Exception):
    """The forge's API did not give a usable answer (down, refused, unexpected)."""


def rate_limit_error(
    forge: str, status: int | None, headers: Mapping[str, Any] | None, now: float
) -> ForgeRateLimited | None:
    """The rate-limit error an answer means, if it means one. Pure.

    GitHub: ``403``/``429`` with ``retry-after`` (secondary limits) or with
    ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` (epoch seconds). GitLab:
    ``429`` with ``Retry-After`` or ``RateLimit-Reset``.
    """
    if status not in (403, 429):
        return None
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    try:
        if "retry-after" in lower:
            return ForgeRateLimited(forge, now + float(lower["retry-after"]), now=now)
        reset = lower.get("x-ratelimit-reset") or lower.get("ratelimit-reset")
        exhausted = lower.get("x-ratelimit-remaining", lower.get("ratelimit-remaining")) == "0"
        if reset and (exhausted or status == 429):
            return ForgeRateLimited(forge, float(reset), now=now)
    except ValueError:
        pass
    if status == 429:
        return ForgeRateLimited(forge, now + 60, now=now)
    return None
