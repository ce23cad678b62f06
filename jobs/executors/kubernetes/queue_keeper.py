"""The Kubernetes queue keeper: lets suspended build Jobs run, within the limits.

The queue is the set of suspended build Jobs: it survives restarts and every replica
sees the same one. One replica at a time keeps it, the holder of a Lease (renewed
every third of ``kubernetes.lease_seconds``; taken over by another replica once it
expired). The keeper releases Jobs oldest first within the concurrency limits
(``jobs.concurrency``), whenever the watch cache says a slot may have changed and
at least once a renewal period, and only while what a build needs answers
(``ReleaseGate``: the registry, the BuildKit daemon). While it does not, the Jobs
wait, suspended: this queue's way of trying a build again later, which no restart of
any replica can lose, and which fails nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from ...checks import Check, run_check
from ...concurrency import may_start
from ...settings import Settings
from . import manifests
from .lease import Lease
from .status import build_over, job_terminal, queued_at, repo_of
from .watch import WatchCache

log = logging.getLogger(__name__)


class ReleaseGate:
    """What a build needs once it runs, checked before Jobs are let run: ``blocked``
    names what does not answer. A change (blocked, or open again) is logged once."""

    def __init__(self, needs: Mapping[str, Check], within: float) -> None:
        self._needs = dict(needs)
        self._within = within
        self._blocked: str | None = None

    async def blocked(self) -> str | None:
        """None when every need answers (within ``within`` seconds, checked together);
        else why not, naming each one that does not."""
        names = sorted(self._needs)
        results = await asyncio.gather(
            *(run_check(name, self._needs[name], self._within) for name in names)
        )
        problems = [f"{result.error}" for result in results if not result.ok]
        blocked = "; ".join(problems) or None
        if blocked is not None and self._blocked is None:
            log.warning("queue keeper: builds wait in the queue until this answers: %s", blocked)
        elif blocked is None and self._blocked is not None:
            log.info("queue keeper: what builds need answers again; letting them run")
        self._blocked = blocked
        return blocked


class QueueKeeper:
    """Keeps the queue while this process holds the Lease (see the module docstring).

    ``cache`` is the executor's watch cache: the keeper reads the Jobs and pods there
    and puts the Jobs it released back into it at once.
    """

    def __init__(
        self,
        settings: Settings,
        coordination: Any,
        batch: Any,
        namespace: str,
        identity: str,
        cache: WatchCache,
        *,
        gate: ReleaseGate | None = None,
    ) -> None:
        self._settings = settings
        self._gate = gate
        self._coordination, self._batch = coordination, batch
        self._namespace, self.identity = namespace, identity
        self._cache = cache
        self._lease = Lease(
            coordination,
            manifests.lease_name(settings),
            namespace,
            identity,
            settings.kubernetes.lease_seconds,
        )
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.leader = False
        """This process holds the Lease (as of its last renewal)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name="queue-keeper")

    def poke(self) -> None:
        """Look at the queue again soon: a slot may have been taken or freed."""
        self._poke.set()

    async def stop(self) -> None:
        """Stop keeping the queue and give the Lease up, so that another replica takes
        it over at once (best effort: otherwise it expires)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.leader:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._release_lease)

    def _hold_lease(self) -> bool:
        """Take or renew the Lease; True when this process holds it."""
        return self._lease.hold() is not None

    def _release_lease(self) -> None:
        self._lease.release()

    async def _keep(self) -> None:
        renew_every = self._settings.kubernetes.lease_seconds / 3
        renewed_at = 0.0
        while True:
            try:
                if time.monotonic() - renewed_at >= renew_every or not self.leader:
                    self.leader = await asyncio.to_thread(self._hold_lease)
                    renewed_at = time.monotonic()
                if self.leader:
                    await self._release_queued()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.leader = False
                log.warning("queue keeper: %r", e)
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(renew_every):
                    await self._poke.wait()

    async def _release_queued(self) -> None:
        """Let suspended Jobs run, oldest first, within the concurrency limits, while
        the gate is open. A Job counts as running until it is terminal or its build is
        over (its pod ended, or its builder container exited)."""
        limits = self._settings.limits
        pods = self._cache.pods
        active = [job for job in self._cache.jobs.values() if not job_terminal(job)]
        running = [
            repo_of(job)
            for job in active
            if not job.spec.suspend and not build_over(pods.get(job.metadata.name))
        ]
        waiting = [job for job in active if job.spec.suspend]
        starting = may_start(
            waiting,
            running,
            max_total=limits.max_concurrent_builds,
            max_per_repo=limits.max_concurrent_builds_per_repo,
            repo_of=repo_of,
            queued_at=queued_at,
        )
        if starting and self._gate is not None and await self._gate.blocked() is not None:
            return  # they wait; looked at again at the next poke or renewal
        for job in starting:
            try:
                updated = await asyncio.to_thread(
                    self._batch.patch_namespaced_job,
                    job.metadata.name,
                    self._namespace,
                    {"spec": {"suspend": False}},
                )
            except ApiException as e:
                if e.status == 404:  # cancelled meanwhile; its slot is used next time
                    continue
                raise
            self._cache.apply_released(updated)
