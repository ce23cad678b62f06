"""Commit statuses from build events: pending while queued or running, then success
(with the image name), failure (with the reason) or cancelled.

The reporter is an ``EventHub`` listener: it is called in the publisher's task and
must not block, so it only records the status a build wants and leaves the sending to
one task per build. That task sends a build's statuses in order, skips the ones
overtaken while an earlier one was in flight (only the latest matters), and runs the
synchronous forge client in a thread. A forge that is down, refuses or is rate limited
never touches the build: the failure is logged and counted
(``binderhub_service_forge_statuses_total``). At shutdown ``drain`` waits a bounded
time for what is still queued (issue 12: a stopping server dropped the last
statuses); what is left after that is logged and counted as ``dropped``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .. import metrics
from ..errors import NotFound
from ..events import BuildEvent
from ..model import DELETION_PREFIX, Build, BuildState
from .base import CommitStatus, ForgeClient, StatusState
from .errors import ForgeRateLimited, ForgeUnavailable
from .hosts import Forges

log = logging.getLogger(__name__)

MAX_CONCURRENT_SENDS = 4
"""Statuses in flight at once, so that a slow forge cannot take every worker thread."""


def build_page_url(public_url: str | None, build_id: str) -> str | None:
    """The build's page (the page at ``/`` opened on its log), or None without
    ``public_url``. The page and not the API: people follow the link, and the API
    would ask them for a token."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/#build={build_id}"


def status_for(
    build: Build, state: str, error: str, *, context: str, public_url: str | None
) -> CommitStatus | None:
    """The commit status for ``build`` entering ``state``. Pure.

    A build superseded by the deletion of its ref is ``cancelled`` and says so: its
    commit did not fail (issue 20)."""
    superseded = (
        error if error.startswith(DELETION_PREFIX) else "superseded by a build of a newer commit"
    )
    described: dict[BuildState, tuple[StatusState, str]] = {
        BuildState.QUEUED: ("pending", "waiting for a build slot"),
        BuildState.RUNNING: ("running", "building the image"),
        BuildState.BUILT: ("success", f"image {build.image}"),
        BuildState.FAILED: ("failure", f"build failed: {error or 'no reason given'}"),
        BuildState.CANCELLED: ("cancelled", "build cancelled"),
        BuildState.SUPERSEDED: ("cancelled", superseded),
    }
    try:
        status_state, description = described[BuildState(state)]
    except ValueError:
        return None
    ref = None
    if build.ref_kind in ("branch", "tag"):
        ref = build.ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    return CommitStatus(
        state=status_state,
        description=description,
        context=context,
        target_url=build_page_url(public_url, build.id),
        ref=ref,
    )


DRAIN_SECONDS = 10.0
"""How long a stopping process waits for its last commit statuses. With uvicorn's 10 s
for open connections it stays within Kubernetes' default 30 s grace period."""


class StatusReporter:
    def __init__(
        self,
        forges: Forges,
        lookup: Callable[[str], Build],
        *,
        context: str,
        public_url: str | None,
    ) -> None:
        self._forges = forges
        self._lookup = lookup
        self._context = context
        self._public_url = public_url
        self._wanted: dict[str, tuple[ForgeClient, str, str, CommitStatus]] = {}
        self._sent: dict[str, CommitStatus] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._forge_of: dict[str, str] = {}  # build id -> forge kind, while it has a worker
        self._sends = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

    def on_event(self, event: BuildEvent) -> None:
        """The ``EventHub`` listener. Never blocks, never raises into the build."""
        if event.kind != "state" or not event.state:
            return
        try:
            build = self._lookup(event.build_id)
        except NotFound:
            return
        if build.provider != "git":  # a record's build: no commit to report on
            return
        found = self._forges.match(build.repo)
        if found is None or found.client is None or not found.host.report_status:
            return
        status = status_for(
            build, event.state, event.message, context=self._context, public_url=self._public_url
        )
        if status is None:
            return
        self._wanted[build.id] = (found.client, found.project, build.sha, status)
        self._forge_of[build.id] = found.client.kind
        if build.id not in self._workers:
            task = asyncio.get_running_loop().create_task(
                self._work(build.id), name=f"forge-status-{build.id}"
            )
            self._workers[build.id] = task

    async def _work(self, build_id: str) -> None:
        try:
            while (wanted := self._wanted.pop(build_id, None)) is not None:
                client, project, sha, status = wanted
                if self._sent.get(build_id) != status:
                    await self._send(client, project, sha, status)
                    self._sent[build_id] = status
                if status.state in ("success", "failure", "cancelled"):
                    self._sent.pop(build_id, None)
        finally:
            self._workers.pop(build_id, None)
            self._forge_of.pop(build_id, None)

    async def _send(
        self, client: ForgeClient, project: str, sha: str, status: CommitStatus
    ) -> None:
        async with self._sends:
            try:
                await asyncio.to_thread(client.set_status, project, sha, status)
            except ForgeRateLimited as e:
                metrics.FORGE_STATUSES.labels(client.kind, "rate_limited").inc()
                log.warning("commit status %s of %s@%s not sent: %s", status.state, project, sha, e)
            except ForgeUnavailable as e:
                metrics.FORGE_STATUSES.labels(client.kind, "failed").inc()
                log.warning("commit status %s of %s@%s not sent: %s", status.state, project, sha, e)
            except Exception:  # a bug here must not end the worker with statuses left
                metrics.FORGE_STATUSES.labels(client.kind, "failed").inc()
                log.exception("commit status %s of %s@%s failed", status.state, project, sha)
            else:
                metrics.FORGE_STATUSES.labels(client.kind, "sent").inc()
                log.info("commit status %s set on %s@%s", status.state, project, sha)

    async def drain(self, within: float | None = None) -> int:
        """Wait until every wanted status has been sent or given up on, for at most
        ``within`` seconds (None: as long as it takes).

        Returns the number of builds whose latest status was still unsent when the
        time was up (0 when all went out). Those are logged, counted as ``dropped``
        and their sending is stopped: nothing of the reporter runs after ``drain``.
        """
        if not self._workers:
            return 0
        log.info(
            "sending the commit statuses of %d builds before stopping (%s)",
            len(self._workers),
            "no time limit" if within is None else f"at most {within:g} s",
        )
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while self._workers:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            # asyncio.wait, not gather: reaching the bound must not cancel the workers
            # before they are counted below
            await asyncio.wait(list(self._workers.values()), timeout=left)
        if not self._workers:
            return 0
        unsent = dict(self._forge_of)
        for kind in unsent.values():
            metrics.FORGE_STATUSES.labels(kind, "dropped").inc()
        log.warning(
            "gave up on the commit statuses of %d builds after %s s: %s",
            len(unsent),
            f"{within:g}",
            ", ".join(sorted(unsent)),
        )
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._wanted.clear()
        return len(unsent)


def attach_status_reporter(
    events_listeners: Callable[[Callable[[BuildEvent], None]], None],
    forges: Forges,
    lookup: Callable[[str], Build],
    *,
    context: str,
    public_url: str | None,
) -> StatusReporter | None:
    """Register a reporter with ``add_listener`` when some forge reports statuses."""
    if not forges.reports_status:
        return None
    reporter = StatusReporter(forges, lookup, context=context, public_url=public_url)
    events_listeners(reporter.on_event)
    return reporter
