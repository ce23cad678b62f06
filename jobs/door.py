"""The door into the pipeline: every request ``BuildService`` receives.

One typed request per trigger, each answered here and nowhere else:
- ``receive_request(BuildRequest)``: the HTTP API, the BinderHub stream, the CLI
  (``request`` is its shorthand); the reconciler's ``request_commit`` for a commit
  it already knows;
- ``receive_push(PushRequest)``: a verified, parsed push delivery
  (``jobs.push_intake``, a subclass);
- ``get``, ``list_builds(BuildQuery)``, ``logs``, ``watch``, ``catalog``,
  ``quota_status``: what the pipeline knows.

``Door`` is a part of ``BuildService`` (its base class): it decides and records; the
service's running side (``jobs.service``) queues, runs and finishes builds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

from . import metrics, watching
from .errors import InvalidRequest, NotFound, RepoNotAllowed, TemporaryError
from .events import BuildEvent, EventHub
from .model import Build, BuildOutcome, BuildState, LogLine
from .push import same_ref, short_name
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


class Target(NamedTuple):
    """What a request asks for: ``url`` at ``ref`` (as resolved), as ``image``."""

    url: str
    ref: str
    resolved: ResolvedRef
    image: str


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
        target = Target(url, ref, resolved, image)
        return self._admit(
            target,
            trigger,
            force=force,
            requester=requester,
            cached=in_registry,
            follows_ref=follows_ref,
        )

    def _admit(
        self,
        target: Target,
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
        other_ref = not same_ref(build, resolved.kind, short_name(ref))
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
