"""The coordinator: from a build request to a build record, a queue and an executor.

Guarantees, in the order a request meets them:
- a request is checked (repo, ref, allow-list) before anything is resolved or stored;
- one image, one build: a request for an image that is queued or running joins it;
- an image in the registry is answered at once and nothing is recorded;
- a commit whose last build failed because of the commit itself (``jobs.failures``) is
  not built again for ``limits.failure_memory`` seconds, unless forced;
- the record is committed before the request is answered, so nothing acknowledged
  is lost; at start-up queued builds are queued again and builds that were running
  are stopped and run again (at most ``MAX_ATTEMPTS`` times);
- a newer commit of a branch supersedes queued builds of older commits of it;
- a temporary failure before a build started (the registry, the build backend) puts it
  back in the queue for a while (``jobs.retries``); it fails after a bounded number of
  tries, never remembered, and no failure is published before then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from . import metrics
from .errors import (
    BuildFailed,
    Conflict,
    RegistryError,
    TemporaryError,
)
from .events import BuildEvent, EventHub
from .executors import DurableExecutor, Executor, Note
from .forges.status import DRAIN_SECONDS, StatusReporter
from .model import Build, BuildState, LogLine
from .push_intake import PushIntake
from .queue_policy import may_start
from .quotas import Quotas, StoreCounter
from .redaction import Redactor
from .refs import RefResolver
from .registry import Registry
from .retries import Retries, RetryPolicy
from .settings import Settings
from .store import DuplicateActiveBuild, Store
from .store.pending import PendingUpdates

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A build interrupted by restarts this many times is marked failed instead."""


class BuildService(PushIntake):
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        registry: Registry,
        resolver: RefResolver,
        executor: Executor,
        events: EventHub | None = None,
        clock: Callable[[], float] = time.time,
        quotas: Quotas | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.resolver = resolver
        self.executor = executor
        self._durable = executor if isinstance(executor, DurableExecutor) else None
        """The executor, when it holds the queue and the limits itself (``executors.base``).
        Otherwise this coordinator queues builds and applies the limits."""
        self.events = events or EventHub()
        self._clock = clock
        self.quotas = quotas or Quotas(settings.quotas, StoreCounter(store))
        self._queue: list[Build] = []
        self._active: dict[str, Build] = {}  # image -> queued or running build
        self._running: dict[str, asyncio.Task[None]] = {}  # build id -> task
        self._cancelling: set[str] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._holding = False  # a push is being recorded: start nothing until it commits
        self._pending = PendingUpdates(store)
        """Writes the running side's changes of records, through a database outage too."""
        self._retries = Retries(retry or RetryPolicy(), self._schedule)
        """Builds back in the queue after a temporary failure, until they are due."""
        self._redact = Redactor(settings)
        """Applied to every log line and error before they are stored (issue 20)."""
        self.status_reporter: StatusReporter | None = None
        """Sends commit statuses from this service's events (attached by
        ``factory.make_service`` when a forge reports them); drained at shutdown."""

    # -- life cycle ---------------------------------------------------------

    async def start(self, *, recover: bool = True) -> None:
        """Take over what a previous process left: queued builds, interrupted builds.

        ``recover=False`` (the one-shot CLI) leaves them alone: they may belong to a
        server that is running right now on the same state file.
        """
        if recover and self._durable is not None:
            for build in self.store.active():
                # it runs on (or waits) where the executor keeps it: attach to it again
                self._log(build, LogLine("", "the service restarted; following this build again"))
                self._active[build.image] = build
                self._queue.append(build)
            await self._durable.adopt(self._adopt_one)
        elif recover:
            for build in self.store.active():
                if await self._run_again(build):
                    self._active[build.image] = build
                    self._queue.append(build)
        await self.executor.sweep()  # what stopped builds left behind (work directories)
        self._schedule()

    async def _run_again(self, build: Build) -> bool:
        """Queue again a build a plain executor ran (or had queued) when the service
        stopped. False when it stays as it is: run by another live process, or failed
        after ``MAX_ATTEMPTS`` interruptions."""
        if build.state is not BuildState.RUNNING:
            return True
        if await self.executor.recover(build):
            log.info("build %s is running in another process; leaving it", build.id)
            return False
        if build.attempts >= MAX_ATTEMPTS:
            self._finish(
                build,
                BuildState.FAILED,
                f"interrupted by {build.attempts} service restarts; giving up",
            )
            return False
        build.state = BuildState.QUEUED
        build.pid = None
        self._pending.update(build.id, state=BuildState.QUEUED, pid=None)
        self._log(build, LogLine("", "the service restarted; this build runs again"))
        return True

    def _adopt_one(self, build: Build) -> None:
        """Record and follow a build the executor found in its cluster that this process
        does not know: another replica's, or one queued before the store was lost.
        Builds that ran while the service was down are thereby reported, not lost."""
        try:
            self._adopt(build)
        except TemporaryError as e:  # the store's outage; the next start finds it again
            log.warning("build %s found in the cluster, not adopted: %s", build.id, e)

    def _adopt(self, build: Build) -> None:
        if self._closed or build.image in self._active or self.store.get(build.id) is not None:
            return
        last = self.store.latest_for_image(build.image)
        if last is not None and (
            not last.state.finished
            or last.state is BuildState.BUILT
            or last.created_at >= build.created_at
        ):
            return  # the store knows this image's outcome (or a newer attempt)
        try:
            self.store.create(build)
        except DuplicateActiveBuild:
            return
        self._log(build, LogLine("", "found this build's Job in the cluster; following it"))
        self._active[build.image] = build
        self._queue.append(build)
        self._schedule()

    async def close(self, *, abandon: bool = False) -> None:
        """Stop scheduling and stop running builds, then send their last commit statuses
        (waiting at most ``forges.status.DRAIN_SECONDS``).

        By default they stay ``running`` in the store and the next ``start`` runs them
        again. ``abandon=True`` (the one-shot CLI, whose builds nobody resumes) marks
        them cancelled instead.
        """
        self._closed = True
        self._retries.close()
        builds = [self.get(build_id) for build_id in self._running]
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if abandon:
            for build in builds:
                self._finish(build, BuildState.CANCELLED, "interrupted")
        if self.status_reporter is not None:
            # builds have stopped: their last commit statuses go out now (bounded)
            await self.status_reporter.drain(DRAIN_SECONDS)
        await self.executor.close()
        await self.registry.aclose()
        self._pending.close()
        self.store.close()

    async def wait_idle(self) -> None:
        """Return when no build is queued or running (for the CLI and tests)."""
        await self._idle.wait()

    # -- requests (the rest: jobs.door.Door, jobs.push_intake.PushIntake) --

    async def cancel(self, build_id: str) -> Build:
        build = self.get(build_id)
        if build.state.finished:
            raise Conflict(f"build {build_id} has already finished ({build.state})")
        if build.state is BuildState.QUEUED and build in self._queue:
            self._queue.remove(build)
            self._finish(build, BuildState.CANCELLED, "cancelled")
            return build
        self._cancelling.add(build.id)
        await self.executor.cancel(build)
        task = self._running.get(build.id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return build

    # -- running ------------------------------------------------------------

    def _stop_later(self, build: Build) -> None:
        """Stop a build the executor holds, without waiting (from synchronous code)."""
        self._cancelling.add(build.id)
        task = asyncio.create_task(self.executor.cancel(build), name=f"stop-{build.name}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _schedule(self) -> None:
        if self._closed:
            return
        due = [build for build in self._queue if not self._retries.waiting(build.id)]
        if self._durable is not None:
            # The executor holds the queue and the limits: hand everything due over.
            starting = due
            self._queue = [build for build in self._queue if self._retries.waiting(build.id)]
        else:
            limits = self.settings.limits
            starting = may_start(
                due,
                (
                    build.repo
                    for build in self._active.values()
                    if build.state is BuildState.RUNNING
                ),
                max_total=limits.max_concurrent_builds,
                max_per_repo=limits.max_concurrent_builds_per_repo,
                repo_of=lambda build: build.repo,
                queued_at=lambda build: build.created_at,
            )
            for build in starting:
                self._queue.remove(build)
                self._mark_running(build)
        for build in starting:
            self._running[build.id] = asyncio.create_task(self._run(build), name=build.name)
        self._update_gauges()

    def _update_gauges(self) -> None:
        queued = sum(1 for build in self._active.values() if build.state is BuildState.QUEUED)
        metrics.QUEUE_LENGTH.set(queued)
        metrics.RUNNING.set(len(self._active) - queued)
        if self._active:
            self._idle.clear()
        else:
            self._idle.set()

    async def _run(self, build: Build) -> None:
        started = False

        def on_start(pid: int | None) -> None:
            nonlocal started
            started = True
            self._started(build, pid)

        try:
            try:
                if await self._in_registry_already(build):
                    return
                await self.executor.run(
                    build,
                    on_log=lambda line: self._log(build, line, builder=not isinstance(line, Note)),
                    on_start=on_start,
                    resume_lines=self.store.count_logs(build.id, builder=True),
                )
            except TemporaryError as e:
                if started or build.state.finished or build.id in self._cancelling:
                    raise BuildFailed(str(e)) from e  # not before the start: a failure
                self._try_later(build, e)
                return
            if not await self.registry.has_image(build.image, use_cache=False):
                raise BuildFailed(
                    "repo2docker succeeded but the image is not in the registry", remember=False
                )
        except asyncio.CancelledError:
            # the service is shutting down: leave the record running for recovery
            self._active.pop(build.image, None)
            raise
        except BuildFailed as e:
            if build.state.finished:  # superseded while it waited
                pass
            elif build.id in self._cancelling:
                self._finish(build, BuildState.CANCELLED, "cancelled")
            elif not e.remember and await self._pushed_anyway(build, e):
                self._finish(build, BuildState.BUILT, None)
            else:
                self._finish(build, BuildState.FAILED, str(e), remember=e.remember)
        except RegistryError as e:
            self._finish(build, BuildState.FAILED, f"cannot confirm the push: {e}")
        except Exception as e:
            log.exception("build %s failed unexpectedly", build.id)
            self._finish(build, BuildState.FAILED, f"internal error: {e!r}")
        else:
            self._finish(build, BuildState.BUILT, None)
        finally:
            self._running.pop(build.id, None)
            self._cancelling.discard(build.id)
            self.store.forget_log_cursor(build.id)
            self._schedule()

    async def _in_registry_already(self, build: Build) -> bool:
        """Whether the image is there already (requests that skipped the check, as
        webhooks do, and builds run again after a restart may find it); then the build
        is finished as built. Raises ``RegistryError`` when the registry cannot say,
        except with a durable executor: its queue holds the build until the registry
        answers (``executors.base.DurableExecutor``), where it is safe from restarts."""
        try:
            found = await self.registry.has_image(build.image, use_cache=False)
        except RegistryError as e:
            if self._durable is None:
                raise
            self._log(build, LogLine("", f"{e}; handed to the queue, which waits for it"))
            return False
        if found:
            self._log(build, LogLine("", f"{build.image} is in the registry already"))
            self._finish(build, BuildState.BUILT, None)
        return found

    def _try_later(self, build: Build, error: TemporaryError) -> None:
        """Put ``build`` back in the queue after ``error`` met it before it started,
        not due before the policy's delay; or fail it when it had its tries. A build
        that held a slot (marked running) gives it back, and its forge sees it pending
        again, never failed."""
        retry = self._retries.failed(build.id, error)
        self._log(build, LogLine("", retry.note(error)))
        if retry.delay is None:
            log.warning("build %s: %s", build.id, retry.failure(error))
            self._finish(build, BuildState.FAILED, retry.failure(error))
            return
        log.warning(
            "build %s waits %g s before it is tried again: %s", build.id, retry.delay, error
        )
        if build.state is BuildState.RUNNING:
            build.state, build.started_at = BuildState.QUEUED, None
            build.attempts = max(build.attempts - 1, 0)  # it did not start
            self.store.update(build.id, state=build.state, started_at=None, attempts=build.attempts)
            self._publish_state(build)
        self._queue.append(build)

    async def _pushed_anyway(self, build: Build, failure: BuildFailed) -> bool:
        """After a failure that is not the commit's (a timeout, a cut cache export, a
        push that failed after its manifest arrived): whether the registry has the image
        all the same, which makes the build ``built`` (the registry is the truth), with
        a note in its log. A registry that cannot answer leaves the failure as it is
        (whatever it raises: this runs while a failure is handled, and the build must
        end)."""
        try:
            there = await self.registry.has_image(build.image, use_cache=False)
        except RegistryError:
            return False
        except Exception:
            log.exception("build %s: asking the registry after its failure failed", build.id)
            return False
        if there:
            note = f"{failure}; {build.image} is in the registry, so the build is built"
            self._log(build, Note("", note))
        return there

    def _mark_running(self, build: Build, **fields: Any) -> None:
        build.state, build.started_at = BuildState.RUNNING, self._clock()
        build.attempts += 1
        self._pending.update(
            build.id,
            state=build.state,
            started_at=build.started_at,
            attempts=build.attempts,
            **fields,
        )
        self._publish_state(build)

    def _started(self, build: Build, pid: int | None) -> None:
        build.pid = pid
        if build.state is BuildState.QUEUED:  # a durable executor's queue let it go
            self._mark_running(build, pid=pid)
            self._update_gauges()
            return
        self._pending.update(build.id, pid=pid)

    def _log(self, build: Build, line: LogLine, *, builder: bool = False) -> None:
        message = self._redact(line.message)
        try:
            stored = self.store.append_log(
                build.id,
                line.phase,
                message,
                builder=builder,
                max_bytes=self.settings.build_logs.max_bytes,
            )
        except TemporaryError as e:
            # a database outage: live watchers still get the line; the stored log lacks it
            log.warning("build %s: a log line could not be stored: %s", build.id, e)
            self.events.publish(BuildEvent(build.id, "log", line.phase, message))
            return
        if stored is not None:  # None: past the build's log cap, neither stored nor sent
            seq, phase, message = stored
            self.events.publish(BuildEvent(build.id, "log", phase, message, seq=seq))

    def _finish(
        self, build: Build, state: BuildState, error: str | None, *, remember: bool = False
    ) -> None:
        error = None if error is None else self._redact(error)
        build.state, build.error, build.finished_at = state, error, self._clock()
        build.error_remembered = remember
        self._pending.update(
            build.id,
            state=state,
            error=error,
            error_remembered=remember,
            finished_at=build.finished_at,
        )
        if self._active.get(build.image) is build:
            del self._active[build.image]
        self._retries.forget(build.id)
        if state is BuildState.BUILT:
            self.registry.remember(build.image)
        metrics.BUILDS.labels(str(state)).inc()
        if build.started_at is not None:
            metrics.BUILD_DURATION.labels(str(state)).observe(
                max(build.finished_at - build.started_at, 0.0)
            )
        self._publish_state(build)

    def _publish_state(self, build: Build) -> None:
        """Tell watchers (and the forge) the state ``build`` entered; log it at INFO."""
        log_state(build)
        self.events.publish(
            BuildEvent(build.id, "state", "", build.error or "", state=str(build.state))
        )


def log_state(build: Build) -> None:
    """One INFO line for each state a build enters: queued, started, finished (with
    its state and error). It names the build, its repository, ref, commit, image,
    trigger and who asked (``-`` for nobody: a push), in the text and as fields of the
    JSON log."""
    step = {BuildState.QUEUED: "queued", BuildState.RUNNING: "started"}.get(
        build.state, f"finished {build.state}"
    )
    requester = build.requester or "-"
    log.info(
        "build %s %s: %s %s commit %s image %s trigger %s requester %s%s",
        build.id,
        step,
        build.repo,
        build.ref,
        build.sha,
        build.image,
        build.trigger,
        requester,
        f": {build.error}" if build.error else "",
        extra={
            "build_id": build.id,
            "state": str(build.state),
            "repo": build.repo,
            "ref": build.ref,
            "commit": build.sha,
            "image": build.image,
            "trigger": build.trigger,
            "requester": requester,
            "error": build.error,
        },
    )
