"""The intake: every request the pipeline receives, answered and recorded.

One typed request per trigger, each answered here and nowhere else:
- ``receive_request(BuildRequest)``: the HTTP API, the BinderHub stream, the CLI; the
  reconciler's ``request_commit`` for a commit it already knows;
- a verified, parsed push delivery: ``jobs.coordinator.push_intake``, which admits
  each of its refs' builds here (``admit``);
- ``get``, ``list_builds(BuildQuery)``, ``logs``, ``watch``, ``catalog``,
  ``quota_status``: what the pipeline knows.

A request joins the queued or running build of its image, is answered from the
registry (``cached``) or from failure memory (``failed-before``), or becomes a build
recorded in the store and added to the ``BuildQueue``; then the runner is woken
(``wake``). It decides and records; the runner (``jobs.coordinator.runner``) runs and
finishes builds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

from .. import metrics
from ..errors import (
    InvalidRequest,
    NotFound,
    RefNotFound,
    RepoNotAllowed,
    TemporaryError,
)
from ..events import BuildEvent, EventHub
from ..model import Build, BuildOutcome, BuildState
from ..naming import build_name_for, image_name_for
from ..registry.client import Registry
from ..settings import Settings
from ..sources.forge_urls import ref_candidates
from ..sources.forms import parse_source
from ..sources.patterns import url_matches
from ..sources.record_cache import RecordCache
from ..sources.records import GitSource
from ..sources.refs import RefResolver
from ..sources.specs import ResolvedRef
from ..store import DuplicateActiveBuild, Store
from . import following
from .announcer import Announcer
from .build_queue import BuildQueue, moves
from .build_requests import BuildPage, BuildQuery, BuildRequest
from .following import WATCH_POLL_SECONDS
from .quotas import Quotas, QuotaStatus
from .record_intake import resolve_record
from .request_notes import RequestNotes, note_interval


class Target(NamedTuple):
    """What a request asks for: ``url`` at ``ref`` (as resolved), as ``image``."""

    url: str
    ref: str
    resolved: ResolvedRef
    image: str


class Intake:
    """See the module docstring. ``wake`` tells the runner that queued builds may start;
    ``stop`` takes back a build an executor holds (a superseded one), without waiting."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        registry: Registry,
        resolver: RefResolver,
        quotas: Quotas,
        queue: BuildQueue,
        events: EventHub,
        announcer: Announcer,
        clock: Callable[[], float],
        wake: Callable[[], None],
        stop: Callable[[Build], None],
        records: RecordCache | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.resolver = resolver
        self.records = records
        """Record resolutions (issue 25); None: records are refused."""
        self.quotas = quotas
        self.queue = queue
        self.events = events
        self.announce = announcer
        self.clock = clock
        self._wake = wake
        self._stop = stop
        self.holding = False
        """A push is being recorded: nothing is woken until it commits."""
        self.requests = RequestNotes(store, clock, note_interval(settings.retention.keep_days))
        """Cache hits, written for retention (``request_notes``)."""

    def wake(self) -> None:
        """Let queued builds start, unless a push is being recorded (it wakes after)."""
        if not self.holding:
            self._wake()

    def check_allowed(self, url: str) -> None:
        """Raise ``RepoNotAllowed`` unless the canonical ``url`` matches an ``allowed_repos``
        pattern (``jobs.sources.patterns.url_matches``)."""
        if not any(url_matches(url, pattern) for pattern in self.settings.allowed_repos):
            raise RepoNotAllowed(f"repository {url} is not in allowed_repos")

    async def receive_request(self, req: BuildRequest) -> BuildOutcome:
        """Build ``req.repo`` at ``req.ref`` unless its image exists; the rules are in
        ``jobs.service``'s module docstring. Raises ``InvalidRequest`` (bad repo or ref),
        ``RepoNotAllowed``, ``RefNotFound``, ``QuotaExceeded`` or a ``TemporaryError``;
        nothing is recorded then.

        ``req.requester`` (who asked, by name) is held to ``settings.quotas``. Joins and
        cache hits are free; over quota, the registry is asked only about images built
        here (``_refuse_over_quota``).

        ``req.repo`` may name a record of a content provider (a DOI, a record's page):
        it is resolved to a version first (``record_intake.resolve_record``; also
        ``RecordNotFound``, ``RecordTooLarge``, ``HostNotHandled``,
        ``ProviderUnavailable``) and its image is named after that version."""
        source = parse_source(req.repo, ref=req.ref, allow_file=self.settings.allow_file_urls)
        if not isinstance(source, GitSource):
            record = await resolve_record(self.settings, self.records, source)
            target = Target(record.page, record.ref, record.resolved, record.image)
            return await self.request_target(
                target,
                provider=record.version.provider,
                trigger=req.trigger,
                force=req.force,
                requester=req.requester,
            )
        self.check_allowed(source.spec.url)
        ref, resolved = await self.resolve_git(source)
        return await self.request_commit(
            source.spec.url,
            ref,
            resolved,
            trigger=req.trigger,
            force=req.force,
            requester=req.requester,
        )

    async def resolve_git(self, source: GitSource) -> tuple[str, ResolvedRef]:
        """The ref ``source`` names and its commit. A tree or blob URL's ref is the
        longest of its candidates (``ref_candidates``) that the repository has; raises
        what ``RefResolver.resolve`` raises, ``RefNotFound`` when no candidate is a ref."""
        url, rest = source.spec.url, source.spec.ref
        if not source.ref_has_path:
            return rest, await self.resolver.resolve(url, rest)
        for ref in ref_candidates(rest):
            try:
                return ref, await self.resolver.resolve(url, ref)
            except RefNotFound:
                continue
        raise RefNotFound(f"{url} has no branch or tag that {rest!r} begins with")

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
        """Like ``receive_request`` for a commit already known (e.g. from the reconciler).

        ``check_registry=False`` records the build without asking the registry first
        (the build asks before it runs): the answer then depends on no I/O.
        ``follows_ref``: the commit is asked for because ``ref`` points at it now (the
        reconciler), as for a push (see ``admit``).
        """
        image = image_name_for(self.settings.image_prefix, url, resolved.sha)
        return await self.request_target(
            Target(url, ref, resolved, image),
            trigger=trigger,
            force=force,
            check_registry=check_registry,
            requester=requester,
            follows_ref=follows_ref,
        )

    async def request_target(
        self,
        target: Target,
        *,
        trigger: str,
        provider: str = "git",
        force: bool = False,
        check_registry: bool = True,
        requester: str | None = None,
        follows_ref: bool = False,
    ) -> BuildOutcome:
        """``request_commit`` for a named ``target`` (of ``provider``: ``git`` or a
        record's provider)."""
        url, image = target.url, target.image
        in_registry = False
        if not self.queue.holds(image):
            if requester is not None:  # quotas (issue 16): answer early, before the lookup
                self._refuse_over_quota(requester, url, image)
            if check_registry and not self.registry.known(image):
                in_registry = await self.registry.has_image(image)
        return self.admit(
            target,
            trigger,
            force=force,
            requester=requester,
            cached=in_registry,
            follows_ref=follows_ref,
            provider=provider,
        )

    def admit(
        self,
        target: Target,
        trigger: str,
        *,
        force: bool,
        requester: str | None,
        cached: bool,
        follows_ref: bool = False,
        provider: str = "git",
    ) -> BuildOutcome:
        """Join, answer from the cache or failure memory, or record a new build.
        No await: the checks and the insert are atomic with respect to other requests
        in this process. ``cached``: the registry said it has the image.
        ``follows_ref``: asked for because a ref moved (a push, the reconciler), so that
        a tag's build, too, is superseded when the tag moves again or is deleted.
        ``provider``: where the content comes from (``git``, ``zenodo``, ...)."""
        answer = self._answer_known(target, force=force, cached=cached, follows_ref=follows_ref)
        if answer is not None:
            return answer
        now = self.clock()
        if requester is not None:  # quotas (issue 16): raises QuotaExceeded, records nothing
            self.quotas.check(requester, target.url, now, self.queue)
        build = new_build(
            target, trigger, requester, now, follows_ref=follows_ref, provider=provider
        )
        superseded = self.queue.superseded_by(build)
        try:
            self.store.create(build, supersede=[other.id for other in superseded])
        except DuplicateActiveBuild:
            return self._joined_elsewhere(target)
        self.take_superseded(
            superseded, f"superseded by build {build.id} of {build.sha}", build.created_at
        )
        self.queue.add(build)
        self.announce.state(build)
        self.wake()
        return BuildOutcome(
            "created", target.url, target.ref, target.resolved.sha, target.image, build
        )

    def _answer_known(
        self, target: Target, *, force: bool, cached: bool, follows_ref: bool
    ) -> BuildOutcome | None:
        """The answer without a new build: the queued or running build of the image
        (``joined``), the registry's image (``cached``), or the commit's failure that is
        remembered (``failed-before``, unless ``force``); None when a build is needed."""
        url, ref, resolved, image = target
        joined = self.queue.join(image, resolved, ref, follows_ref=follows_ref)
        if joined is not None:
            if joined.pinned:
                self.store.update(joined.build.id, supersedable=False)
            return BuildOutcome("joined", url, ref, resolved.sha, image, joined.build)
        if cached or self.registry.known(image):
            metrics.CACHE_LOOKUPS.labels("hit").inc()
            self.requests.note(image)
            return BuildOutcome("cached", url, ref, resolved.sha, image)
        metrics.CACHE_LOOKUPS.labels("miss").inc()
        if force:
            return None
        last = self.store.latest_for_image(image)
        memory = self.settings.limits.failure_memory
        until = last.failure_remembered_until(memory) if last is not None else None
        if until is not None and self.clock() < until:
            return BuildOutcome("failed-before", url, ref, resolved.sha, image, last)
        return None

    def _joined_elsewhere(self, target: Target) -> BuildOutcome:
        """The answer when another process (the CLI, another replica) is building the
        image: its build, joined; a ``TemporaryError`` when it finished in between."""
        other = self.store.latest_for_image(target.image)
        if other is None or other.state.finished:
            raise TemporaryError(f"{target.image} was being built elsewhere; ask again")
        url, ref, resolved, image = target
        return BuildOutcome("joined", url, ref, resolved.sha, image, other)

    def take_superseded(self, superseded: list[Build], error: str, at: float) -> None:
        """Take ``superseded`` (queued, marked superseded in the store at ``at`` with
        ``error``) off the queue; an executor that holds one gives it back."""
        for build in self.queue.take_superseded(superseded, error, at):
            self._stop(build)
        for build in superseded:
            self.announce.state(build)

    def _refuse_over_quota(self, requester: str, url: str, image: str) -> None:
        """Raise ``QuotaExceeded`` for a requester over quota before the registry lookup
        (most of what a refusal would cost), unless the image may be a cache hit: one
        built here before, which the lookup then confirms. The check before the insert
        stays the one that counts; this one only answers early."""
        if not self.quotas.enabled or self.registry.known(image):
            return
        last = self.store.latest_for_image(image)
        if last is None or last.state is not BuildState.BUILT:
            self.quotas.check(requester, url, self.clock(), self.queue)

    # -- what the pipeline knows ----------------------------------------------------

    def quota_status(self, requester: str) -> list[QuotaStatus]:
        """``requester``'s quotas that are on, and what it uses of them now."""
        return self.quotas.status(requester, self.clock(), self.queue)

    def get(self, build_id: str) -> Build:
        """The build ``build_id``: this process's record while it is queued or running,
        else the store's. Raises ``NotFound``."""
        build = self.queue.get(build_id) or self.store.get(build_id)
        if build is None:
            raise NotFound(f"no build with id {build_id!r}")
        return build

    def list_builds(self, query: BuildQuery) -> BuildPage:
        """A page of builds, newest first. Raises ``InvalidRequest`` when ``query.cursor``
        names no stored build."""
        if query.cursor is not None and self.store.get(query.cursor) is None:
            raise InvalidRequest("cursor is not a build id from a previous page")
        state = None if query.state is None else str(query.state)
        builds = self.store.recent(
            repo=query.repo, state=state, limit=query.limit + 1, before=query.cursor
        )
        page = tuple(builds[: query.limit])
        return BuildPage(page, page[-1].id if len(builds) > query.limit else None)

    def logs(self, build_id: str) -> tuple[Build, list[tuple[str, str]]]:
        """The build and the (phase, message) lines stored for it so far. Raises
        ``NotFound``."""
        build = self.get(build_id)
        return build, self.store.logs(build.id)

    def catalog(self) -> dict[str, list[Build]]:
        """Built images by repository (in the order of each one's newest), newest first:
        the catalog hub profiles read. An image retention deleted after its last build
        is left out until it is built again (issue 26)."""
        deleted = self.store.last_deletions()
        repos: dict[str, list[Build]] = {}
        for build in self.store.built_images():
            if deleted.get(build.image, 0.0) > (build.finished_at or build.created_at):
                continue
            repos.setdefault(build.repo, []).append(build)
        return repos

    def watch(
        self, build_id: str, *, poll_interval: float = WATCH_POLL_SECONDS
    ) -> AsyncIterator[BuildEvent]:
        """The build's story from the start, then live events until it finishes
        (``jobs.coordinator.following.watch``: no line lost or repeated). Raises
        ``NotFound``."""
        return following.watch(self, build_id, poll_interval)


def new_build(
    target: Target,
    trigger: str,
    requester: str | None,
    now: float,
    *,
    follows_ref: bool,
    provider: str = "git",
) -> Build:
    """The record of a new queued build of ``target`` (content from ``provider``),
    asked for by ``trigger`` (and ``requester``) at ``now``: supersedable when a moving
    ref asked for it (``build_queue.moves``). Pure apart from its random id."""
    url, ref, resolved, image = target
    return Build(
        id=uuid.uuid4().hex,
        repo=url,
        ref=ref,
        ref_kind=resolved.kind,
        sha=resolved.sha,
        image=image,
        name=build_name_for(image),
        state=BuildState.QUEUED,
        trigger=trigger,
        created_at=now,
        supersedable=moves(resolved, follows_ref=follows_ref),
        requester=requester,
        provider=provider,
    )
