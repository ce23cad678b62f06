"""Builds as Kubernetes Jobs: one Job per image, queued in the cluster.

How it fits together:
- ``run`` creates the build's Job, always suspended (``build_jobs``). The Job's name
  comes from the image, so a second request for the same image, from this process or
  another replica, gets 409 AlreadyExists and attaches to the Job that is there.
- The queue keeper (``queue_keeper``: one replica at a time, the holder of a Lease)
  lets suspended Jobs run in the order they were queued, within ``limits``, and only
  while what a build needs answers (the registry, the BuildKit daemon): until then
  they wait in the cluster, which is how this executor retries (nothing is lost if
  every replica restarts meanwhile).
- Two watches keep a cache of the Jobs and their pods in memory (``watch``);
  each running build reads the cache whenever it changes and decides, with
  ``status``: started, failed and why, done.
- The builder container's log is followed into the store. After a restart the
  build attaches to its Job again and skips the lines it stored before.
- The API clients, the namespace and the checks of what builds need are ``cluster``'s.
- The log's lines tell which phase the build is in (``jobs.repo2docker.phases``, from the moment
  its builder started): a phase that runs past its deadline gets the Job deleted, as
  the Job's ``activeDeadlineSeconds`` (``limits.build_timeout``) does for the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client

from ...checks import Check
from ...errors import BuildFailed
from ...model import Build, CountedBuild, LogLine
from ...repo2docker.phases import PhaseTracker
from ...settings import ConfigError, Settings
from ..base import DurableExecutor
from . import status
from .build_jobs import BuildJobs
from .cluster import CHECK_TIMEOUT_SECONDS, Cluster
from .queue_keeper import QueueKeeper, ReleaseGate
from .watch import LogFollower, WatchCache, start_events

RECHECK_SECONDS = 5.0
"""A running build looks at its Job at least this often, even when nothing changed
(for the unschedulable timeout, and in case a watch event went missing)."""
LOG_DRAIN_SECONDS = 30.0
"""How long a finished build waits for the rest of its log."""
MAX_LOG_RESTARTS = 5
"""How often a build's log is read on after its stream broke off while it ran."""


@dataclasses.dataclass
class _Following:
    """Where ``run`` is in following one build's Job."""

    skip: int
    """Log lines stored before, not to be delivered again."""
    follower: LogFollower | None = None
    restarts: int = 0
    started: bool = False
    seen: bool = False
    """The Job was in the cache once (so its absence means it was deleted)."""
    phases: PhaseTracker | None = None
    """The build's phases, once its builder started (the event loop's time)."""


class KubernetesExecutor(DurableExecutor):
    """Builds outlive this process and the queue is in the cluster: the coordinator
    hands every build over at once and ``run`` attaches to what exists."""

    backend = "kubernetes"

    def __init__(
        self,
        settings: Settings,
        api: client.ApiClient | None = None,
        *,
        needs: Mapping[str, Check] | None = None,
    ) -> None:
        """``needs``: what a build needs besides the BuildKit daemon (which this
        executor checks itself), by name: the queue keeper lets no build start while
        one of them does not answer (the factory passes the registry's check)."""
        self._settings = settings
        self._cluster = Cluster(settings, api)
        self.namespace = self._cluster.namespace
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._cache = WatchCache(
            self._cluster.batch,
            self._cluster.core,
            self.namespace,
            self._cluster.selector,
            on_job=self._offer,
            on_queue_change=lambda: self._keeper.poke(),
        )
        gate = {**(needs or {}), **self._cluster.buildkit_checks()}
        self._keeper = QueueKeeper(
            settings,
            self._cluster.coordination,
            self._cluster.batch,
            self.namespace,
            self.identity,
            self._cache,
            gate=ReleaseGate(gate, CHECK_TIMEOUT_SECONDS),
        )
        self._jobs = BuildJobs(self._cluster, self._cache)
        self._cancelled: set[str] = set()
        self._found: Callable[[Build], None] | None = None
        self._started = False
        self._start_lock = asyncio.Lock()

    # -- start and stop -----------------------------------------------------

    async def _ensure_started(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            await asyncio.to_thread(self._cluster.check_access)
            await asyncio.to_thread(self._cluster.ensure_config_map)
            await self._cache.start()
            self._keeper.start()
            self._started = True

    async def check(self) -> None:
        """The API server answers the cheapest call builds depend on: listing this
        executor's Jobs (one at most), within ``cluster.CHECK_TIMEOUT_SECONDS``."""
        await self._cluster.check()

    def checks(self) -> dict[str, Check]:
        """``kubernetes`` (the API server), and ``buildkit`` with ``builder: buildkit``."""
        return {self.backend: self.check, **self._cluster.buildkit_checks()}

    async def close(self) -> None:
        self._cache.stop()
        await self._keeper.stop()
        self._cluster.api.close()

    # -- running a build ----------------------------------------------------

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        try:
            await self._ensure_started()  # TemporaryError: the API server does not answer
        except ConfigError as e:  # the API server refuses us (issue #12)
            raise BuildFailed(str(e)) from None
        changed = self._cache.follow(build.name)
        following = _Following(skip=0)
        try:
            if build.id in self._cancelled:
                raise BuildFailed("cancelled before it started", remember=False)
            if await self._jobs.create_or_attach(build, on_log):
                following.skip = resume_lines
            while True:
                changed.clear()
                if await self._look(build, following, on_log, on_start):
                    await self._jobs.drop_git_secret(build)
                    return
                await self._check_phases(build, following)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._wait_seconds(following)):
                        await changed.wait()
        except BuildFailed:  # the build is over (its Job finished, deleted or never made)
            await self._jobs.drop_git_secret(build)
            raise
        finally:
            if following.follower is not None:
                following.follower.stop()
            self._cache.unfollow(build.name)
            self._cancelled.discard(build.id)

    async def _look(
        self,
        build: Build,
        following: _Following,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
    ) -> bool:
        """Read the build's Job and pod from the cache once: True when the build is
        done, BuildFailed when it failed, False while it waits or runs."""
        name = build.name
        job = self._cache.jobs.get(name)
        if job is None:
            if following.seen or build.id in self._cancelled:
                reason = (
                    "cancelled"
                    if build.id in self._cancelled
                    else "the build's Job was deleted (cancelled by another replica?)"
                )
                raise BuildFailed(reason, remember=False)
            return False
        following.seen = True
        if not job.spec.suspend and not following.started:
            following.started = True
            on_start(None)
        pod = status.pod_of(job, self._cache.pods.get(name))
        if pod is not None and status.has_log(pod):
            self._read_log(pod, following, on_log)
        if pod is not None and status.builder_succeeded(pod):
            # The Job says Complete a few seconds later (its controller batches pod
            # updates); with backoffLimit 0 it cannot differ.
            await self._drain(following.follower)
            return True
        finished = status.job_finished(job)
        if finished is not None:
            lines = await self._drain(following.follower)
            if finished == "complete":
                return True
            pod = status.pod_of(job, self._cache.pods.get(name))
            failure = status.failure_of(job, pod, self._settings, lines, build.image, time.time())
            raise BuildFailed(failure.message, remember=failure.remember)
        problem = None
        if pod is not None:
            problem = status.pod_problem(pod, self._settings, time.time())
        if problem is None and status.start_overdue(job, pod, self._settings, time.time()):
            problem = await self._start_problem(job, pod)
        if problem is not None:
            await self._jobs.delete(name)
            raise BuildFailed(problem, remember=False)
        return False

    async def _check_phases(self, build: Build, following: _Following) -> None:
        """Stop the build (delete its Job) and raise BuildFailed, not remembered, when
        one of its phases ran past its deadline; the coordinator then asks the registry
        (a cache export cut after the push leaves the image there)."""
        if following.phases is None:
            return
        limits = self._settings.limits.phase_timeouts
        expired = following.phases.expired(limits, asyncio.get_running_loop().time())
        if expired is not None:
            await self._jobs.delete(build.name)
            raise BuildFailed(expired.message, remember=False)

    def _wait_seconds(self, following: _Following) -> float:
        """How long to wait for a change of the Job before looking again: at most
        ``RECHECK_SECONDS``, less when a phase's deadline comes sooner."""
        if following.phases is None:
            return RECHECK_SECONDS
        deadline = following.phases.deadline(self._settings.limits.phase_timeouts)
        return max(0.0, min(RECHECK_SECONDS, deadline - asyncio.get_running_loop().time()))

    async def _start_problem(self, job: Any, pod: Any | None) -> str | None:
        """Why an overdue build cannot start, from its Job's and pod's events (issue #14:
        a missing socket or Secret, a Pod Security refusal); None while there is no
        Warning. Never the commit's failure."""
        events = await asyncio.to_thread(start_events, self._cluster.core, self.namespace, job, pod)
        return status.start_failure(events, self._settings)

    def _read_log(self, pod: Any, following: _Following, on_log: Callable[[LogLine], None]) -> None:
        """Follow the builder's log; read on where it stopped if its stream broke off
        (an API server restart, a proxy's timeout) while the build goes on."""
        follower = following.follower
        if follower is None:
            following.follower = self._follow_log(pod, following, following.skip, on_log)
        elif (
            follower.done.is_set()
            and status.builder_running(pod)
            and following.restarts < MAX_LOG_RESTARTS
        ):
            following.restarts += 1
            following.follower = self._follow_log(pod, following, follower.seen, on_log)

    def _follow_log(
        self, pod: Any, following: _Following, skip: int, on_log: Callable[[LogLine], None]
    ) -> LogFollower:
        loop = asyncio.get_running_loop()
        if following.phases is None:  # the builder started: its fetch begins
            following.phases = PhaseTracker(start=loop.time())
        phases = following.phases
        return LogFollower(
            self._cluster.core,
            self.namespace,
            pod.metadata.name,
            skip,
            on_log,
            loop,
            observe=lambda line: phases.feed(line, loop.time()),
        )

    async def _drain(self, follower: LogFollower | None) -> list[LogLine]:
        if follower is None:
            return []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOG_DRAIN_SECONDS):
                await follower.done.wait()
        return list(follower.tail)

    async def cancel(self, build: Build) -> None:
        self._cancelled.add(build.id)
        await self._ensure_started()
        await self._jobs.delete(build.name)
        self._cache.notify(build.name)

    # -- the durable executor's part ----------------------------------------

    async def adopt(self, found: Callable[[Build], None]) -> None:
        """Offers the build of each Job of this instance (its label selector) that no
        ``run`` of this process follows."""
        await self._ensure_started()
        self._found = found
        for job in sorted(self._cache.jobs.values(), key=status.queued_at):
            self._offer(job)

    def counted_builds(self) -> list[CountedBuild]:
        """The requested builds of the Jobs in the watch cache, which every replica
        sees alike. A deleted Job (a cancelled or superseded build) is not among them."""
        counted = (status.counted_build_of(job) for job in self._cache.jobs.values())
        return [build for build in counted if build is not None]

    def _offer(self, job: Any) -> None:
        if self._found is None or self._cache.followed(job.metadata.name):
            return  # nobody asked, or a build of this process follows the Job
        build = status.build_of_job(job)
        if build is not None:
            self._found(build)
