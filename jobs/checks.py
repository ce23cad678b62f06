"""Dependency checks: is the registry, the Docker or BuildKit daemon, the API server, the
hub answering right now?

A *check* is an async callable that returns when its dependency answers and raises
(a ``TemporaryError`` naming it, ideally) when it does not. Readiness runs them in the
background (``jobs.readiness``); the Kubernetes queue keeper runs some before it lets
builds start (``executors.kubernetes.queue_keeper``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    error: str | None = None
    """Why the check failed, in words that name the dependency."""


async def run_check(name: str, check: Check, within: float) -> CheckResult:
    """The result of ``check`` (of the dependency ``name``) within ``within`` seconds;
    never raises (a bug in a check is a failed check)."""
    try:
        async with asyncio.timeout(within):
            await check()
    except TimeoutError:
        return CheckResult(False, f"{name} did not answer within {within:g} s")
    except Exception as e:
        return CheckResult(False, str(e) or type(e).__name__)
    return CheckResult(True)


def in_thread(function: Callable[[], None]) -> Check:
    """A check that runs the blocking ``function`` in a worker thread, one call at a
    time: a call still under way (a hung disk) is waited for again by the next check
    instead of taking another thread. A timeout around the check stops the wait, not
    the thread."""
    pending: asyncio.Future[None] | None = None

    async def check() -> None:
        nonlocal pending
        if pending is None or pending.done():
            pending = asyncio.ensure_future(asyncio.to_thread(function))
            # read the outcome even when nobody waits any more (no "never retrieved")
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.shield(pending)

    return check
