"""The pipeline as one object: ``BuildService``, which owns the parts and answers for them.

Guarantees, in the order a request meets them:
- a request is checked (repo, ref, allow-list) before anything is resolved or stored;
- one image, one build: a request for an image that is queued or running joins it;
- an image in the registry is answered at once and nothing is recorded;
- a commit whose last build failed because of the commit itself
  (``jobs.repo2docker.failures``) is not built again for ``limits.failure_memory``
  seconds, unless forced;
- the record is committed before the request is answered, so nothing acknowledged
  is lost; at start-up queued builds are queued again and builds that were running
  are stopped and run again (at most ``MAX_ATTEMPTS`` times);
- a newer commit of a branch supersedes queued builds of older commits of it;
- a temporary failure before a build started (the registry, the build backend) puts it
  back in the queue for a while (``jobs.coordinator.retries``); it fails after a bounded number of
  tries, never remembered, and no failure is published before then.

The parts (``jobs.coordinator``): a ``BuildQueue`` holds the queued and running builds
and their rules; the ``Intake`` answers requests and records builds into it
(``PushIntake`` for push deliveries); the ``Runner`` runs them with the executor and
finishes them; the ``Announcer`` stores their log lines and tells watchers. The service
wires them together, starts and stops them, and runs the work that goes on beside
requests (log retention, the reconciler).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .coordinator.announcer import Announcer
from .coordinator.build_queue import BuildQueue
from .coordinator.build_requests import BuildPage, BuildQuery, BuildRequest
from .coordinator.following import WATCH_POLL_SECONDS
from .coordinator.intake import Intake
from .coordinator.push import PushAnswer, PushRequest
from .coordinator.push_intake import PushIntake
from .coordinator.quotas import Quotas, QuotaStatus, StoreCounter
from .coordinator.reconcile import check_records_once, reconcile_every
from .coordinator.retries import RetryPolicy
from .coordinator.runner import MAX_ATTEMPTS, Runner
from .errors import Conflict
from .events import BuildEvent, EventHub
from .executors import Executor
from .forges.status import DRAIN_SECONDS, StatusReporter
from .model import Build, BuildOutcome, DeletionTotals, ImageDeletion
from .registry.client import Registry
from .settings import Settings
from .sources.record_cache import RecordCache
from .sources.refs import RefResolver
from .sources.specs import ResolvedRef
from .store import Store
from .store.retention import prune_logs_forever

if TYPE_CHECKING:
    from .prepull.keeper import PrepullKeeper

__all__ = ["MAX_ATTEMPTS", "BuildService"]


class BuildService:
    """See the module docstring. Its methods are what ``webhook/`` and the CLI call."""

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
        records: RecordCache | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.resolver = resolver
        self.executor = executor
        self.events = events or EventHub()
        self.quotas = quotas or Quotas(settings.quotas, StoreCounter(store))
        self.queue = BuildQueue()
        announcer = Announcer(settings, store, self.events)
        self.runner = Runner(
            settings,
            store=store,
            registry=registry,
            executor=executor,
            queue=self.queue,
            announcer=announcer,
            clock=clock,
            retry=retry,
        )
        self.intake = Intake(
            settings,
            store=store,
            registry=registry,
            resolver=resolver,
            quotas=self.quotas,
            queue=self.queue,
            events=self.events,
            announcer=announcer,
            clock=clock,
            wake=self.runner.wake,
            stop=self.runner.stop_later,
            records=records,
        )
        self.pushes = PushIntake(self.intake)
        self.status_reporter: StatusReporter | None = None
        """Sends commit statuses from this service's events (attached by
        ``factory.make_service`` when a forge reports them); drained at shutdown."""
        self.prepull: PrepullKeeper | None = None
        """Keeps the pre-pull DaemonSet current (``prepull.enabled``: attached by
        ``factory.make_service``); runs beside requests."""
        self._background: list[asyncio.Task[None]] = []
        self.closing: list[Callable[[], Awaitable[None]]] = []
        """Called by ``close`` at its end: what the factory made for the service (the
        record resolutions' HTTP client)."""

    # -- life cycle ---------------------------------------------------------

    async def start(self, *, recover: bool = True) -> None:
        """Take over what a previous process left (queued builds, interrupted builds),
        start what may start, and the work beside requests: log retention
        (``build_logs.retention_days``), the reconciler
        (``webhooks.reconcile_interval``), the checks of the records in ``repos``
        (``providers.check_interval``) and pre-pull (``prepull``).

        ``recover=False`` (the one-shot CLI) leaves the state's builds alone, as they
        may belong to a server that is running right now on the same state file, and
        runs no work beside its own build.
        """
        if recover:
            await self.runner.recover()
        await self.executor.sweep()  # what stopped builds left behind (work directories)
        self.runner.wake()
        if recover:
            retention = self.settings.build_logs.retention_days
            self._beside(prune_logs_forever(self.store, retention), "log-retention")
            interval = self.settings.webhooks.reconcile_interval
            self._beside(reconcile_every(self.intake, interval), "reconciler")
            if any(repo.is_record for repo in self.settings.repos):
                checks = self.settings.providers.check_interval
                self._beside(
                    reconcile_every(self.intake, checks, check_records_once), "record-checks"
                )
            if self.prepull is not None:
                self._beside(self.prepull.run(), "prepull")

    def _beside(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._background.append(asyncio.create_task(work, name=name))

    @property
    def beside(self) -> list[str]:
        """The names of the work running beside requests now (``log-retention``,
        ``reconciler``, ``record-checks``)."""
        return [task.get_name() for task in self._background if not task.done()]

    async def close(self, *, abandon: bool = False) -> None:
        """Stop the work beside requests, stop waking builds and stop running ones, then
        send their last commit statuses (waiting at most ``forges.status.DRAIN_SECONDS``).

        By default the running builds stay ``running`` in the store and the next
        ``start`` runs them again. ``abandon=True`` (the one-shot CLI, whose builds
        nobody resumes) marks them cancelled instead.
        """
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.prepull is not None:
            await self.prepull.close()  # another replica writes at once
        await self.runner.close(abandon=abandon)
        if self.status_reporter is not None:
            # builds have stopped: their last commit statuses go out now (bounded)
            await self.status_reporter.drain(DRAIN_SECONDS)
        await self.executor.close()
        await self.registry.aclose()
        self.runner.pending.close()
        self.store.close()
        for close in self.closing:
            await close()

    async def wait_idle(self) -> None:
        """Return when no build is queued or running (for the CLI and tests)."""
        await self.runner.wait_idle()

    # -- requests -----------------------------------------------------------

    def check_allowed(self, url: str) -> None:
        """Raise ``RepoNotAllowed`` unless ``url`` is in ``allowed_repos``."""
        self.intake.check_allowed(url)

    async def request(
        self,
        repo: str,
        ref: str | None = None,
        *,
        trigger: str = "api",
        force: bool = False,
        requester: str | None = None,
    ) -> BuildOutcome:
        """Shorthand for ``receive_request(BuildRequest(...))`` (the CLI, tests)."""
        return await self.receive_request(BuildRequest(repo, ref, trigger, force, requester))

    async def receive_request(self, req: BuildRequest) -> BuildOutcome:
        """Build ``req.repo`` at ``req.ref`` unless its image exists
        (``Intake.receive_request``, which says what it raises)."""
        return await self.intake.receive_request(req)

    async def request_commit(
        self,
        url: str,
        ref: str,
        resolved: ResolvedRef,
        *,
        trigger: str,
        force: bool = False,
        check_registry: bool = True,
        requester: str | None = None,
        follows_ref: bool = False,
    ) -> BuildOutcome:
        """A build of a commit already known (``Intake.request_commit``)."""
        return await self.intake.request_commit(
            url,
            ref,
            resolved,
            trigger=trigger,
            force=force,
            check_registry=check_registry,
            requester=requester,
            follows_ref=follows_ref,
        )

    def receive_push(self, push: PushRequest) -> PushAnswer:
        """Answer a verified, parsed push delivery (``PushIntake.receive_push``)."""
        return self.pushes.receive_push(push)

    def recorded_push(self, provider: str, delivery_id: str | None) -> PushAnswer | None:
        """The answer recorded for a delivery received before, if any."""
        return self.pushes.recorded_push(provider, delivery_id)

    async def cancel(self, build_id: str) -> Build:
        """Cancel build ``build_id``: one that waits here ends at once, one that runs is
        stopped. Raises ``NotFound``, or ``Conflict`` when it has finished already."""
        build = self.get(build_id)
        if build.state.finished:
            raise Conflict(f"build {build_id} has already finished ({build.state})")
        await self.runner.cancel(build)
        return build

    # -- what the pipeline knows --------------------------------------------

    def get(self, build_id: str) -> Build:
        """The build ``build_id``. Raises ``NotFound``."""
        return self.intake.get(build_id)

    def list_builds(self, query: BuildQuery) -> BuildPage:
        """A page of builds, newest first (``Intake.list_builds``)."""
        return self.intake.list_builds(query)

    def logs(self, build_id: str) -> tuple[Build, list[tuple[str, str]]]:
        """The build and its stored (phase, message) lines. Raises ``NotFound``."""
        return self.intake.logs(build_id)

    def catalog(self) -> dict[str, list[Build]]:
        """Built images by repository, newest first (``Intake.catalog``)."""
        return self.intake.catalog()

    def retention_deletions(
        self, limit: int, after: tuple[float, str] | None = None
    ) -> list[ImageDeletion]:
        """At most ``limit`` of the images retention deleted, newest first, after the one
        ``after`` names (``Store.deletions``; issue 26)."""
        return self.store.deletions(limit, after=after)

    def retention_totals(self) -> DeletionTotals:
        """What every recorded retention deletion adds up to (``/metrics``)."""
        return self.store.deletion_totals()

    def quota_status(self, requester: str) -> list[QuotaStatus]:
        """``requester``'s quotas that are on, and what it uses of them now."""
        return self.intake.quota_status(requester)

    def watch(
        self, build_id: str, *, poll_interval: float = WATCH_POLL_SECONDS
    ) -> AsyncIterator[BuildEvent]:
        """The build's story from the start, then live events until it finishes
        (``jobs.coordinator.following.watch``). Raises ``NotFound``."""
        return self.intake.watch(build_id, poll_interval=poll_interval)
