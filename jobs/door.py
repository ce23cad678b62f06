"""The door into the pipeline: every request ``BuildService`` receives.

One typed request per trigger, each answered here and nowhere else:
- ``receive_request(BuildRequest)``: the HTTP API, the BinderHub stream, the CLI
  (``request`` is its shorthand); the reconciler's ``request_commit`` for a commit
  it already knows;
- ``receive_push(PushRequest)``: a verified, parsed push delivery; which refs build
  is ``jobs.push.select_refs``; the builds created, the queued builds a deletion
  supersedes and the delivery's record are committed in one transaction, before the
  answer;
- ``get``, ``list_builds(BuildQuery)``, ``logs``, ``watch``, ``catalog``,
  ``quota_status``: what the pipeline knows.

``Door`` is a part of ``BuildService`` (its base class): it decides and records; the
service's running side (``jobs.service``) queues, runs and finishes builds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

from . import metrics, watching
from .errors import InvalidRequest, NotFound, RepoNotAllowed, TemporaryError
from .events import BuildEvent, EventHub
from .model import Build, BuildOutcome, BuildState, LogLine
from .push import (
    Decision,
    Deletion,
    Ignored,
    Push,
    PushAnswer,
    PushRequest,
    deletion_error,
    delivery_name,
    match_repo,
    ref_kind_of,
    select_refs,
    short_name,
)
from .quotas import Quotas, QuotaStatus
from .refs import RefResolver, ResolvedRef
from .registry import Registry
from .repo_urls import url_matches
from .requests import BuildPage, BuildQuery, BuildRequest
from .settings import Settings
from .specs import build_name_for, image_name_for, repo_spec
from .store import DuplicateActiveBuild, Store

WATCH_POLL_SECONDS = 10.0
"""Seconds of silence after which a watched build's state is read again. Builds of
this process announce their end; a build that another process runs (the CLI, another
replica) does not, and only its record says when it finished."""


class _Target(NamedTuple):
    """What a request asks for: ``url`` at ``ref`` (as resolved), as ``image``."""

    url: str
    ref: str
    resolved: ResolvedRef
    image: str


class _AfterCommit(NamedTuple):
    """What a push's deletions do to queued and running builds once its transaction
    has committed (the store holds it already)."""

    superseded: list[tuple[Build, str]]
    """Queued builds marked superseded in the store, with their error."""
    kept: list[tuple[Build, str]]
    """Builds of a deleted ref left alone, with the line their log gets."""


def _same_ref(build: Build, kind: str, name: str) -> bool:
    """Whether ``build`` was asked for by the ref ``name`` of ``kind`` (``refs/heads/x``
    asked for by its full name counts as ``x``)."""
    return build.ref_kind == kind and short_name(build.ref) == name


class Door:
    """The request side of ``BuildService``; see the module docstring."""

    # Set by BuildService.__init__:
    settings: Settings
    store: Store
    registry: Registry
    resolver: RefResolver
    events: EventHub
    quotas: Quotas
    _clock: Callable[[], float]
    _queue: list[Build]
    _active: dict[str, Build]
    """image -> its queued or running build"""
    _holding: bool
    """A push is being recorded: nothing starts until it commits."""

    # Provided by BuildService's running side:
    def _schedule(self) -> None:
        raise NotImplementedError

    def _stop_later(self, build: Build) -> None:
        raise NotImplementedError

    def _publish_state(self, build: Build) -> None:
        raise NotImplementedError

    def _log(self, build: Build, line: LogLine, *, builder: bool = False) -> None:
        raise NotImplementedError

    def check_allowed(self, url: str) -> None:
        """Raise ``RepoNotAllowed`` unless the canonical ``url`` matches an ``allowed_repos``
        pattern (``jobs.repo_urls.url_matches``)."""
        if not any(url_matches(url, pattern) for pattern in self.settings.allowed_repos):
            raise RepoNotAllowed(f"repository {url} is not in allowed_repos")

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
        """Build ``req.repo`` at ``req.ref`` unless its image exists; the rules are in
        ``jobs.service``'s module docstring. Raises ``InvalidRequest`` (bad repo or ref),
        ``RepoNotAllowed``, ``RefNotFound``, ``QuotaExceeded`` or a ``TemporaryError``;
        nothing is recorded then.

        ``req.requester`` (who asked, by name) is held to ``settings.quotas``. Joins and
        cache hits are free; over quota, the registry is asked only about images built
        here (``_refuse_over_quota``)."""
        spec = repo_spec(req.repo, req.ref, allow_file=self.settings.allow_file_urls)
        self.check_allowed(spec.url)
        resolved = await self.resolver.resolve(spec.url, spec.ref)
        return await self.request_commit(
            spec.url,
            spec.ref,
            resolved,
            trigger=req.trigger,
            force=req.force,
            requester=req.requester,
        )

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
        """Like ``request`` for a commit already known (e.g. from the reconciler).

        ``check_registry=False`` records the build without asking the registry first
        (the build asks before it runs): the answer then depends on no I/O.
        ``follows_ref``: the commit is asked for because ``ref`` points at it now (the
        reconciler), as for a push (see ``_admit``).
        """
        image = image_name_for(self.settings.image_prefix, url, resolved.sha)
        in_registry = False
        if image not in self._active:
            if requester is not None:  # quotas (issue 16): answer early, before the lookup
                self._refuse_over_quota(requester, url, image)
            if check_registry and not self.registry.known(image):
                in_registry = await self.registry.has_image(image)
        target = _Target(url, ref, resolved, image)
        return self._admit(
            target,
            trigger,
            force=force,
            requester=requester,
            cached=in_registry,
            follows_ref=follows_ref,
        )

    def receive_push(self, push: PushRequest) -> PushAnswer:
        """Answer a verified, parsed push delivery: the recorded answer for a redelivery,
        else ask for a build of each pushed ref that ``jobs.push.select_refs`` selects.

        No I/O but the store's: the push names each commit, so the resolver's cache is
        refreshed from it and the build is recorded without asking the registry (the
        build asks before it runs). A deleted ref is forgotten by the cache, and its
        queued builds that only the ref asked for are superseded (``_delete_ref``). The
        builds created, the builds superseded and the delivery's record are committed
        in one transaction before this returns; when it raises, none is.
        """
        recorded = self.recorded_push(push.provider, push.delivery_id)
        if recorded is not None:
            return recorded
        created: list[Build] = []
        after = _AfterCommit([], [])
        self._holding = True  # nothing starts before the commit
        try:
            with self.store.transaction():
                decision = self._decide_push(push, created, after)
                if push.delivery_id is not None:
                    self.store.remember_delivery(
                        push.provider,
                        push.delivery_id,
                        self._clock(),
                        json.dumps(decision.to_json()),
                        keep=self.settings.webhooks.deliveries_remembered,
                    )
        except BaseException:
            for build in created:  # rolled back: not queued either
                if build in self._queue:
                    self._queue.remove(build)
                self._active.pop(build.image, None)
            raise
        else:
            now = self._clock()
            for build, error in after.superseded:
                self._take_superseded([build], error, now)
            for build, note in after.kept:
                self._log(build, LogLine("", note))
        finally:
            self._holding = False
            self._schedule()
        return PushAnswer(decision.to_json(), duplicate=False)

    def recorded_push(self, provider: str, delivery_id: str | None) -> PushAnswer | None:
        """The answer recorded for the delivery ``delivery_id`` of ``provider``, if it was
        received before (and not yet forgotten: ``webhooks.deliveries_remembered``)."""
        recorded = None if delivery_id is None else self.store.delivery(provider, delivery_id)
        return None if recorded is None else PushAnswer(json.loads(recorded), duplicate=True)

    def _decide_push(
        self, push: PushRequest, created: list[Build], after: _AfterCommit
    ) -> Decision:
        """Ask for the builds ``push`` selects; append those created to ``created``.
        Each ref is asked for on its own; the image name dedupes, so a commit that
        several refs point at builds once. Deletions of selected refs supersede
        (``_delete_ref``); what that does in memory is added to ``after``."""
        event = push.event
        if isinstance(event, Ignored):
            return Decision("ignored", event.reason)
        settings = self.settings
        repo = match_repo(settings.repos, event.urls, allow_file=settings.allow_file_urls)
        if repo is None:
            return Decision("ignored", "repo not configured")
        try:
            self.check_allowed(repo.url)
        except RepoNotAllowed:
            return Decision("ignored", "repo not in allowed_repos", repo.url)
        self._forget_deleted(repo.url, event)
        selection = select_refs(repo, event)
        deleted = tuple(self._delete_ref(repo.url, ref, push, after) for ref in selection.deleted)
        ignored = selection.ignored
        if not selection.builds and not any(d.superseded for d in deleted):
            return Decision(
                "ignored", "no ref to build", repo.url, ignored=ignored, deleted=deleted
            )
        builds = []
        for ref in selection.builds:
            self.resolver.remember(repo.url, ref.full_ref, ref.resolved)
            if ref.resolved.kind == "branch":
                # Only branches under their short name: "v1" resolves to a branch v1
                # before a tag v1, so remembering a tag push as "v1" could shadow a branch.
                self.resolver.remember(repo.url, ref.name, ref.resolved)
            image = image_name_for(settings.image_prefix, repo.url, ref.resolved.sha)
            target = _Target(repo.url, ref.name, ref.resolved, image)
            outcome = self._admit(
                target, push.provider, force=False, requester=None, cached=False, follows_ref=True
            )
            if outcome.status == "created" and outcome.build is not None:
                created.append(outcome.build)
            builds.append((ref.full_ref, outcome))
        return Decision("accepted", None, repo.url, tuple(builds), ignored, deleted)

    def _forget_deleted(self, url: str, push: Push) -> None:
        """Drop the resolver's cached answers for the refs ``push`` deletes, so that no
        request is answered from a ref that is gone."""
        for change in push.changes:
            if change.sha is None:
                self.resolver.forget(url, change.ref)
                self.resolver.forget(url, short_name(change.ref))

    def _delete_ref(
        self, url: str, full_ref: str, push: PushRequest, after: _AfterCommit
    ) -> Deletion:
        """Supersede the queued builds of ``full_ref`` (deleted by ``push``) that only
        that ref asked for: marked in the store now (inside the push's transaction), and
        taken off the queue once it commits (``after``). A forge is told ``cancelled``,
        never ``failure`` (``jobs.forges.status``).

        A build that is running goes on (as it would if a newer commit arrived): its
        image is named by its commit, which the deletion does not make wrong, and
        stopping it mid-push helps no one. So does a queued build someone else asked
        for too (by SHA, by a tag, by another ref: ``supersedable`` is False). Each gets
        a line in its log saying so."""
        kind, name = ref_kind_of(full_ref), short_name(full_ref)
        error = deletion_error(full_ref, push.provider, push.delivery_id)
        superseded: list[str] = []
        kept: list[str] = []
        now = self._clock()
        for build in list(self._active.values()):
            if build.repo != url or not _same_ref(build, kind, name):
                continue
            if build.state is BuildState.QUEUED and build.supersedable:
                self.store.update(
                    build.id, state=BuildState.SUPERSEDED, error=error, finished_at=now
                )
                after.superseded.append((build, error))
                superseded.append(build.id)
            else:
                why = (
                    "it is running"
                    if build.state is BuildState.RUNNING
                    else "its commit was asked for otherwise too"
                )
                deleted_by = delivery_name(push.provider, push.delivery_id)
                after.kept.append(
                    (build, f"{full_ref} was deleted ({deleted_by}); this build goes on: {why}")
                )
                kept.append(build.id)
        return Deletion(full_ref, tuple(superseded), tuple(kept))

    def _admit(
        self,
        target: _Target,
        trigger: str,
        *,
        force: bool,
        requester: str | None,
        cached: bool,
        follows_ref: bool = False,
    ) -> BuildOutcome:
        """Join, answer from the cache or failure memory, or record a new build.
        No await: the checks and the insert are atomic with respect to other requests
        in this process. ``cached``: the registry said it has the image.
        ``follows_ref``: asked for because a ref moved (a push, the reconciler), so that
        a tag's build, too, is superseded when the tag moves again or is deleted."""
        url, ref, resolved, image = target
        joined = self._join(image, resolved, ref, follows_ref=follows_ref)
        if joined is not None:
            return BuildOutcome("joined", url, ref, resolved.sha, image, joined)
        if cached or self.registry.known(image):
            metrics.CACHE_LOOKUPS.labels("hit").inc()
            return BuildOutcome("cached", url, ref, resolved.sha, image)
        metrics.CACHE_LOOKUPS.labels("miss").inc()
        if not force:
            last = self.store.latest_for_image(image)
            until = (
                last.failure_remembered_until(self.settings.limits.failure_memory) if last else None
            )
            if until is not None and self._clock() < until:
                return BuildOutcome("failed-before", url, ref, resolved.sha, image, last)
        now = self._clock()
        if requester is not None:  # quotas (issue 16): raises QuotaExceeded, records nothing
            self.quotas.check(requester, url, now, self._active.values())
        build = Build(
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
            supersedable=resolved.kind in ("branch", "head")
            or (follows_ref and resolved.kind == "tag"),
            requester=requester,
        )
        superseded = [
            other
            for other in self._active.values()
            if other.state is BuildState.QUEUED
            and other.repo == url
            and other.ref == ref
            and other.ref_kind == build.ref_kind
            and other.sha != build.sha
            and other.supersedable
            and build.supersedable
        ]
        try:
            self.store.create(build, supersede=[other.id for other in superseded])
        except DuplicateActiveBuild:
            # another process (the CLI, another replica) is building this image
            other = self.store.latest_for_image(image)
            if other is None or other.state.finished:  # it finished in between
                raise TemporaryError(f"{image} was being built elsewhere; ask again") from None
            return BuildOutcome("joined", url, ref, resolved.sha, image, other)
        self._take_superseded(
            superseded, f"superseded by build {build.id} of {build.sha}", build.created_at
        )
        self._queue.append(build)
        self._active[image] = build
        self._publish_state(build)
        if not self._holding:
            self._schedule()
        return BuildOutcome("created", url, ref, resolved.sha, image, build)

    def _take_superseded(self, superseded: list[Build], error: str, at: float) -> None:
        """Take ``superseded`` (queued, marked superseded in the store at ``at`` with
        ``error``) off the queue."""
        for other in superseded:
            if other in self._queue:
                self._queue.remove(other)
            else:  # handed to a durable executor, waiting in its queue: take it back
                self._stop_later(other)
            if self._active.get(other.image) is other:
                del self._active[other.image]
            other.state, other.finished_at, other.error = BuildState.SUPERSEDED, at, error
            self._publish_state(other)

    def _refuse_over_quota(self, requester: str, url: str, image: str) -> None:
        """Raise ``QuotaExceeded`` for a requester over quota before the registry lookup
        (most of what a refusal would cost), unless the image may be a cache hit: one
        built here before, which the lookup then confirms. The check before the insert
        stays the one that counts; this one only answers early."""
        if not self.quotas.enabled or self.registry.known(image):
            return
        last = self.store.latest_for_image(image)
        if last is None or last.state is not BuildState.BUILT:
            self.quotas.check(requester, url, self._clock(), self._active.values())

    def quota_status(self, requester: str) -> list[QuotaStatus]:
        """``requester``'s quotas that are on, and what it uses of them now."""
        return self.quotas.status(requester, self._clock(), self._active.values())

    def _join(
        self, image: str, resolved: ResolvedRef, ref: str, *, follows_ref: bool = False
    ) -> Build | None:
        """The queued or running build of ``image``, if there is one. A request for
        another ref than the build's, or for the commit itself (by SHA, or by a tag it
        did not see move: ``follows_ref``) makes it stop being supersedable: it wants
        this commit too."""
        build = self._active.get(image)
        if build is None:
            return None
        other_ref = not _same_ref(build, resolved.kind, short_name(ref))
        moving = resolved.kind in ("branch", "head") or (follows_ref and resolved.kind == "tag")
        if build.supersedable and (other_ref or not moving):
            build.supersedable = False
            self.store.update(build.id, supersedable=False)
        return build

    def get(self, build_id: str) -> Build:
        for build in self._active.values():
            if build.id == build_id:
                return build
        found = self.store.get(build_id)
        if found is None:
            raise NotFound(f"no build with id {build_id!r}")
        return found

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
        the catalog hub profiles read."""
        repos: dict[str, list[Build]] = {}
        for build in self.store.built_images():
            repos.setdefault(build.repo, []).append(build)
        return repos

    def watch(
        self, build_id: str, *, poll_interval: float = WATCH_POLL_SECONDS
    ) -> AsyncIterator[BuildEvent]:
        """The build's story from the start, then live events until it finishes
        (``jobs.watching.watch``: no line lost or repeated). Raises ``NotFound``."""
        return watching.watch(self, build_id, poll_interval)
