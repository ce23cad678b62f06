"""Readiness: can this pod answer, and do the dependencies its builds share answer?
(issues 12 and 20)

A pod is *ready* when it can answer requests: its state store is readable (and, as the
answer comes from its event loop, that loop turns). Only then is it taken out of its
Service. The dependencies every replica shares (the build backend: the Docker daemon or
the Kubernetes API server; the BuildKit daemon; the registry; JupyterHub) are reported
as *degraded* instead: in the answer, as a gauge each on ``/metrics``, and in the log
once per change. A dependency that is down is down for every replica alike; taking them
all out of the Service turned a slow hub into webhooks answered 503 and profiles that
vanished (issue 20), where the service can still record pushes, and builds wait for
what they need (``jobs.coordinator.retries``).

``DependencyMonitor`` checks each dependency in a loop of its own, each try bounded by
a timeout, so that the probe reads the last results and waits for nothing: a slow
dependency cannot slow the probe, nor can probes multiply the checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import metrics
from .checks import Check, CheckResult, in_thread, run_check

if TYPE_CHECKING:
    from .service import BuildService

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
"""How long one check may take before it counts as failed."""
CHECK_INTERVAL_SECONDS = 5.0
"""Seconds between the end of one check of a dependency and the start of the next."""
STALE_SECONDS = 30.0
"""A result older than this is not trusted (its loop stopped): the dependency counts
as failing."""
POD_CHECKS = frozenset({"store"})
"""The checks that decide whether the pod is ready; the others are shared dependencies."""


@dataclass(frozen=True)
class Status:
    """What is known of one dependency: its last result, since when it has been
    answering (or not), and when it was last checked (epoch seconds)."""

    ok: bool
    error: str | None
    since: float
    checked_at: float


def report(
    statuses: Mapping[str, Status],
    *,
    now: float,
    pod_checks: Collection[str] = POD_CHECKS,
    stale_after: float = STALE_SECONDS,
) -> dict[str, Any]:
    """The readiness answer's JSON. Pure.

    ``status`` is ``ready`` when everything answers, ``degraded`` when a shared
    dependency does not (the pod still answers), ``unavailable`` when one of
    ``pod_checks`` fails (the only one that is not ready). A result older than
    ``stale_after`` counts as failing."""
    checks: dict[str, Any] = {}
    failing: set[str] = set()
    for name, status in sorted(statuses.items()):
        ok, error = status.ok, status.error
        if now - status.checked_at > stale_after:
            ok, error = False, f"not checked for {now - status.checked_at:.0f} s"
        entry: dict[str, Any] = {"ok": ok}
        if not ok:
            failing.add(name)
            entry["error"] = error or "failed"
        entry["since"] = round(status.since, 3)
        entry["checked_at"] = round(status.checked_at, 3)
        checks[name] = entry
    if failing & set(pod_checks):
        answer = "unavailable"
    elif failing:
        answer = "degraded"
    else:
        answer = "ready"
    return {"status": answer, "checks": checks}


class DependencyMonitor:
    """Checks ``checks`` in the background and keeps the last result of each.

    ``start`` checks everything once (together, so at most ``timeout`` seconds) and
    then keeps checking each one every ``interval`` seconds until ``stop``. A change
    of a result (answering, or not) is logged once and sets the dependency's gauge
    (``binderhub_service_dependency_up``)."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        pod_checks: Collection[str] = POD_CHECKS,
        timeout: float = CHECK_TIMEOUT_SECONDS,
        interval: float = CHECK_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._checks = dict(checks)
        self._pod_checks = frozenset(pod_checks)
        self._timeout = timeout
        self._interval = interval
        self._clock = clock
        self._statuses: dict[str, Status] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await asyncio.gather(*(self.check(name) for name in self._checks))
        self._tasks = [
            asyncio.create_task(self._keep_checking(name), name=f"check-{name}")
            for name in self._checks
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _keep_checking(self, name: str) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check(name)

    async def check(self, name: str) -> Status:
        """Check ``name`` now and record the result."""
        result = await run_check(name, self._checks[name], self._timeout)
        return self._record(name, result)

    def _record(self, name: str, result: CheckResult) -> Status:
        now = self._clock()
        before = self._statuses.get(name)
        changed = before is None or before.ok != result.ok
        since = now if changed or before is None else before.since
        status = Status(result.ok, result.error, since, now)
        self._statuses[name] = status
        metrics.DEPENDENCY_UP.labels(name).set(1 if result.ok else 0)
        if changed:
            self._log_change(name, before, status)
        return status

    def _log_change(self, name: str, before: Status | None, now: Status) -> None:
        role = "this pod is not ready" if name in self._pod_checks else "degraded"
        if not now.ok:
            log.warning("%s does not answer (%s): %s", name, role, now.error)
        elif before is not None:
            log.info("%s answers again, after %.0f s", name, now.checked_at - before.since)

    def statuses(self) -> dict[str, Status]:
        return dict(self._statuses)

    def answer(self) -> dict[str, Any]:
        """The readiness answer (``report``) from the last results: no I/O."""
        return report(
            self._statuses,
            now=self._clock(),
            pod_checks=self._pod_checks,
            stale_after=max(STALE_SECONDS, 3 * (self._interval + self._timeout)),
        )


def pod_checks(service: BuildService) -> frozenset[str]:
    """The checks that decide whether ``service``'s pod is ready: its state file's, unless
    the store is a database every replica shares (then nothing outside the process does;
    the probe's own answer shows that the event loop answers)."""
    return frozenset() if service.store.shared else POD_CHECKS


def service_checks(service: BuildService) -> dict[str, Check]:
    """What ``service`` depends on: its state store (the pod's own), and the shared
    ones: its build backend (named by the executor: ``docker``, ``kubernetes``,
    ``buildkit``) and the registry."""
    return {
        **service.executor.checks(),
        "registry": service.registry.check,
        "store": in_thread(service.store.check),
    }
