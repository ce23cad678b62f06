"""The running side of the pipeline: queued builds handed to the executor, followed to
their end, and finished.

``Runner.wake`` takes the builds that may start from the ``BuildQueue``
(``jobs.concurrency``, or every due build for an executor that holds the queue
itself) and runs each: the registry is asked first (a webhook's build may find its
image there), then the executor runs it, then the registry must have the image. A
``TemporaryError`` before the executor started it puts the build back in the queue for
a while (``jobs.coordinator.retries``); it fails after a bounded number of tries, never
remembered, and no failure is published before then. A failure that is not the
commit's is checked against the registry once more (``_pushed_anyway``). Each end is
written through a database outage (``store.pending``) and announced.

At start-up (``recover``) the builds a previous process left are taken over: queued
builds are queued again, builds that were running are run again (at most
``MAX_ATTEMPTS`` times), and a durable executor's builds are followed again where it
keeps them, with the builds it holds that this process never knew (``adopt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .. import metrics
from ..errors import BuildFailed, RegistryError, TemporaryError
from ..executors import DurableExecutor, Executor, Note
from ..model import Build, BuildState, LogLine
from ..registry.client import Registry
from ..settings import Settings
from ..store import DuplicateActiveBuild, Store
from ..store.pending import PendingUpdates
from .announcer import Announcer
from .build_queue import BuildQueue
from .retries import Retries, RetryPolicy

log = logging.getLogger("jobs.service")

MAX_ATTEMPTS = 3
"""A build interrupted by restarts this many times is marked failed instead."""


class Runner:
    """See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        registry: Registry,
        executor: Executor,
        queue: BuildQueue,
        announcer: Announcer,
        clock: Callable[[], float],
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.executor = executor
        self.durable = executor if isinstance(executor, DurableExecutor) else None
        """The executor, when it holds the queue and the limits itself (``executors.base``).
        Otherwise this runner applies the limits."""
        self.queue = queue
        self.announce = announcer
        self.clock = clock
        self.pending = PendingUpdates(store)
        """Writes the changes of records, through a database outage too."""
        self._retries = Retries(retry or RetryPolicy(), self.wake)
        """Builds back in the queue after a temporary failure, until they are due."""
        self._running: dict[str, tuple[Build, asyncio.Task[None]]] = {}
        self._cancelling: set[str] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False

    async def recover(self) -> None:
        """Take over what a previous process left: queued builds, interrupted builds,
        and what a durable executor holds (see the module docstring)."""
        if self.durable is not None:
            for build in self.store.active():
                # it runs on (or waits) where the executor keeps it: attach to it again
                line = LogLine("", "the service restarted; following this build again")
                self.announce.line(build, line)
                self.queue.add(build)
            await self.durable.adopt(self._adopt_one)
            return
        for build in self.store.active():
            if await self._run_again(build):
                self.queue.add(build)

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
            error = f"interrupted by {build.attempts} service restarts; giving up"
            self.finish(build, BuildState.FAILED, error)
            return False
        build.state = BuildState.QUEUED
        build.pid = None
        self.pending.update(build.id, state=BuildState.QUEUED, pid=None)
        self.announce.line(build, LogLine("", "the service restarted; this build runs again"))
        return True

    def _adopt_one(self, build: Build) -> None:
        """Record and follow a build the executor found in its cluster that this process
        does not know: another replica's, or one queued before the store was lost.
        Builds that ran while the service was down are thereby reported, not lost."""
        try:
            if self._adopt(build):
                line = LogLine("", "found this build's Job in the cluster; following it")
                self.announce.line(build, line)
                self.queue.add(build)
                self.wake()
        except TemporaryError as e:  # the store's outage; the next start finds it again
            log.warning("build %s found in the cluster, not adopted: %s", build.id, e)

    def _adopt(self, build: Build) -> bool:
        """Record ``build`` unless it is known here or the store knows its image's
        outcome (or a newer attempt); whether it was recorded."""
        if self.closed or self.queue.holds(build.image) or self.store.get(build.id) is not None:
            return False
        last = self.store.latest_for_image(build.image)
        if last is not None and (
            not last.state.finished
            or last.state is BuildState.BUILT
            or last.created_at >= build.created_at
        ):
            return False
        try:
            self.store.create(build)
        except DuplicateActiveBuild:
            return False
        return True

    async def close(self, *, abandon: bool = False) -> None:
        """Stop waking and stop running builds. By default they stay ``running`` in the
        store and the next ``start`` runs them again; ``abandon=True`` (the one-shot
        CLI, whose builds nobody resumes) marks them cancelled instead."""
        self.closed = True
        self._retries.close()
        running = list(self._running.values())
        for _, task in running:
            task.cancel()
        for _, task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if abandon:
            for build, _ in running:
                self.finish(build, BuildState.CANCELLED, "interrupted")

    async def wait_idle(self) -> None:
        """Return when no build is queued or running (for the CLI and tests)."""
        await self._idle.wait()

    async def cancel(self, build: Build) -> None:
        """Cancel the unfinished ``build``: a build waiting here ends at once; one the
        executor holds is stopped there, and this returns when its run has ended."""
        if build.state is BuildState.QUEUED and self.queue.remove(build):
            self.finish(build, BuildState.CANCELLED, "cancelled")
            return
        self._cancelling.add(build.id)
        await self.executor.cancel(build)
        running = self._running.get(build.id)
        if running is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(running[1])

    def stop_later(self, build: Build) -> None:
        """Stop a build the executor holds, without waiting (from synchronous code)."""
        self._cancelling.add(build.id)
        task = asyncio.create_task(self.executor.cancel(build), name=f"stop-{build.name}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def wake(self) -> None:
        """Start what may start now: every due build for an executor that holds the
        queue and the limits itself, otherwise as the limits allow."""
        if self.closed:
            return
        limits = self.settings.limits
        starting = self.queue.take_runnable(
            max_total=limits.max_concurrent_builds,
            max_per_repo=limits.max_concurrent_builds_per_repo,
            hand_all=self.durable is not None,
            due=lambda build: not self._retries.waiting(build.id),
        )
        for build in starting:
            if self.durable is None:
                self._mark_running(build)
            task = asyncio.create_task(self._run(build), name=build.name)
            self._running[build.id] = (build, task)
        self._update_gauges()

    def _update_gauges(self) -> None:
        queued, running = self.queue.counts()
        metrics.QUEUE_LENGTH.set(queued)
        metrics.RUNNING.set(running)
        if queued or running:
            self._idle.clear()
        else:
            self._idle.set()

    async def _run(self, build: Build) -> None:
        try:
            await self._build(build)
        except asyncio.CancelledError:
            # the service is shutting down: leave the record running for recovery
            self.queue.finished(build)
            raise
        except BuildFailed as e:
            await self._failed(build, e)
        except RegistryError as e:
            self.finish(build, BuildState.FAILED, f"cannot confirm the push: {e}")
        except Exception as e:
            log.exception("build %s failed unexpectedly", build.id)
            self.finish(build, BuildState.FAILED, f"internal error: {e!r}")
        finally:
            self._running.pop(build.id, None)
            self._cancelling.discard(build.id)
            self.store.forget_log_cursor(build.id)
            self.wake()

    async def _build(self, build: Build) -> None:
        """Run ``build`` to its end and finish it ``built``, or put it back in the queue
        (``_try_later``). Raises ``BuildFailed`` and what asking the registry raises."""
        started = False

        def on_start(pid: int | None) -> None:
            nonlocal started
            started = True
            self._started(build, pid)

        try:
            if await self._in_registry_already(build):
                return
            await self.executor.run(
                build,
                on_log=lambda line: self.announce.line(
                    build, line, builder=not isinstance(line, Note)
                ),
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
        self.finish(build, BuildState.BUILT, None)

    async def _failed(self, build: Build, failure: BuildFailed) -> None:
        """End ``build`` after ``failure``: cancelled when it was, built when the
        registry has the image all the same, else failed (remembered if the failure is
        the commit's own). A build already finished (superseded while it waited) stays."""
        if build.state.finished:
            return
        if build.id in self._cancelling:
            self.finish(build, BuildState.CANCELLED, "cancelled")
        elif not failure.remember and await self._pushed_anyway(build, failure):
            self.finish(build, BuildState.BUILT, None)
        else:
            self.finish(build, BuildState.FAILED, str(failure), remember=failure.remember)

    async def _in_registry_already(self, build: Build) -> bool:
        """Whether the image is there already (requests that skipped the check, as
        webhooks do, and builds run again after a restart may find it); then the build
        is finished as built. Raises ``RegistryError`` when the registry cannot say,
        except with a durable executor: its queue holds the build until the registry
        answers (``executors.base.DurableExecutor``), where it is safe from restarts."""
        try:
            found = await self.registry.has_image(build.image, use_cache=False)
        except RegistryError as e:
            if self.durable is None:
                raise
            self.announce.line(build, LogLine("", f"{e}; handed to the queue, which waits for it"))
            return False
        if found:
            self.announce.line(build, LogLine("", f"{build.image} is in the registry already"))
            self.finish(build, BuildState.BUILT, None)
        return found

    def _try_later(self, build: Build, error: TemporaryError) -> None:
        """Put ``build`` back in the queue after ``error`` met it before it started,
        not due before the policy's delay; or fail it when it had its tries. A build
        that held a slot (marked running) gives it back, and its forge sees it pending
        again, never failed."""
        retry = self._retries.failed(build.id, error)
        self.announce.line(build, LogLine("", retry.note(error)))
        if retry.delay is None:
            log.warning("build %s: %s", build.id, retry.failure(error))
            self.finish(build, BuildState.FAILED, retry.failure(error))
            return
        log.warning(
            "build %s waits %g s before it is tried again: %s", build.id, retry.delay, error
        )
        if build.state is BuildState.RUNNING:
            build.state, build.started_at = BuildState.QUEUED, None
            build.attempts = max(build.attempts - 1, 0)  # it did not start
            self.store.update(build.id, state=build.state, started_at=None, attempts=build.attempts)
            self.announce.state(build)
        self.queue.requeue(build)

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
            self.announce.line(build, Note("", note))
        return there

    def _mark_running(self, build: Build, **fields: Any) -> None:
        build.state, build.started_at = BuildState.RUNNING, self.clock()
        build.attempts += 1
        self.pending.update(
            build.id,
            state=build.state,
            started_at=build.started_at,
            attempts=build.attempts,
            **fields,
        )
        self.announce.state(build)

    def _started(self, build: Build, pid: int | None) -> None:
        build.pid = pid
        if build.state is BuildState.QUEUED:  # a durable executor's queue let it go
            self._mark_running(build, pid=pid)
            self._update_gauges()
            return
        self.pending.update(build.id, pid=pid)

    def finish(
        self, build: Build, state: BuildState, error: str | None, *, remember: bool = False
    ) -> None:
        """End ``build`` in ``state`` with ``error`` (redacted), recorded through a
        database outage too, counted and announced; ``remember``: a failure of the
        commit's own (failure memory)."""
        error = None if error is None else self.announce.redact(error)
        build.state, build.error, build.finished_at = state, error, self.clock()
        build.error_remembered = remember
        self.pending.update(
            build.id,
            state=state,
            error=error,
            error_remembered=remember,
            finished_at=build.finished_at,
        )
        self.queue.finished(build)
        self._retries.forget(build.id)
        if state is BuildState.BUILT:
            self.registry.remember(build.image)
        metrics.BUILDS.labels(str(state)).inc()
        if build.started_at is not None:
            metrics.BUILD_DURATION.labels(str(state)).observe(
                max(build.finished_at - build.started_at, 0.0)
            )
        self.announce.state(build)
