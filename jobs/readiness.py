"""Readiness: can this service build right now? (issue 12)

Each dependency a build needs is a named *check*: an async callable that returns when
the dependency answers and raises (a ``TemporaryError`` naming it, ideally) when it
does not. ``Readiness`` runs them concurrently, each bounded by a timeout, and keeps
the answer for a moment so that probes from several places do not hammer anything.
Liveness is not here on purpose: a dependency that is down is not a reason to restart
the process, only to stop sending it work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .service import BuildService

Check = Callable[[], Awaitable[None]]

CHECK_TIMEOUT_SECONDS = 2.0
"""How long one check may take before it counts as failed."""
CACHE_SECONDS = 1.0
"""How long an answer is reused. The kubelet probes every few seconds; this keeps
anything else that asks (load balancers, monitoring, people) from multiplying checks."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    error: str | None = None
    """Why the check failed, in words that name the dependency."""


async def run_check(name: str, check: Check, within: float) -> CheckResult:
    """The result of ``check`` (of the dependency ``name``); never raises (a bug in a
    check is a failed check)."""
    try:
        async with asyncio.timeout(within):
            await check()
    except TimeoutError:
        return CheckResult(False, f"{name} did not answer within {within:g} s")
    except Exception as e:
        return CheckResult(False, str(e) or type(e).__name__)
    return CheckResult(True)


def report(results: Mapping[str, CheckResult]) -> dict[str, Any]:
    """The readiness answer's JSON: ``ready`` when every check passed. Pure."""
    checks: dict[str, Any] = {}
    for name, result in sorted(results.items()):
        checks[name] = {"ok": True} if result.ok else {"ok": False, "error": result.error}
    ready = all(result.ok for result in results.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}


class Readiness:
    """Runs ``checks`` concurrently, at most once per ``cache_seconds``."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        timeout: float = CHECK_TIMEOUT_SECONDS,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = dict(checks)
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._last: tuple[float, dict[str, CheckResult]] | None = None
        self._lock = asyncio.Lock()

    async def results(self) -> dict[str, CheckResult]:
        """Every check's result, from the last ``cache_seconds`` or run now; callers
        that arrive while a run is under way share it."""
        async with self._lock:
            if self._last is not None and self._clock() - self._last[0] < self._cache_seconds:
                return self._last[1]
            names = list(self._checks)
            outcomes = await asyncio.gather(
                *(run_check(name, self._checks[name], self._timeout) for name in names)
            )
            results = dict(zip(names, outcomes, strict=True))
            self._last = (self._clock(), results)
            return results


def service_checks(service: BuildService) -> dict[str, Check]:
    """What ``service``'s builds need: its build backend (named by the executor), the
    registry and the state store."""

    async def store() -> None:
        await asyncio.to_thread(service.store.check)

    return {
        service.executor.backend: service.executor.check,
        "registry": service.registry.check,
        "store": store,
    }
