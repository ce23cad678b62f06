"""Push deliveries into the pipeline: ``PushIntake.receive_push`` (``BuildService``'s).

Which refs of a push build is ``jobs.coordinator.push.select_refs``; this acts on it. The builds
created, the queued builds a deletion supersedes and the delivery's record are
committed in one transaction, before the answer: a 2xx to a forge means the decision
is stored, and a redelivery gets the recorded answer and changes nothing.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from ..errors import RepoNotAllowed
from ..model import Build, BuildState, LogLine
from ..naming import image_name_for
from .intake import Intake, Target
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
    select_refs,
    short_name,
)


class _RecordedElsewhere(Exception):
    """The delivery's answer was recorded by another process during this one's."""


class _AfterCommit(NamedTuple):
    """What a push's deletions do to queued and running builds once its transaction
    has committed (the store holds it already)."""

    superseded: list[tuple[Build, str, float]]
    """Queued builds marked superseded in the store: the build, its error, when."""
    kept: list[tuple[Build, str]]
    """Builds of a deleted ref left alone, with the line their log gets."""


class PushIntake:
    """Push deliveries, admitted through ``intake``; see the module docstring."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.store = intake.store
        self.settings = intake.settings

    def receive_push(self, push: PushRequest) -> PushAnswer:
        """Answer a verified, parsed push delivery: the recorded answer for a redelivery,
        else ask for a build of each pushed ref that ``jobs.coordinator.push.select_refs`` selects.

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
        self.intake.holding = True  # nothing starts before the commit
        try:
            with self.store.transaction():
                decision = self._decide_push(push, created, after)
                if push.delivery_id is not None and not self.store.remember_delivery(
                    push.provider,
                    push.delivery_id,
                    self.intake.clock(),
                    json.dumps(decision.to_json()),
                    keep=self.settings.webhooks.deliveries_remembered,
                ):
                    # another replica received the same delivery at the same time and
                    # recorded its answer first: that one stands, this one is undone
                    raise _RecordedElsewhere
        except BaseException as e:
            self.intake.queue.rollback(created)  # rolled back: not queued either
            if not isinstance(e, _RecordedElsewhere):
                raise
            answer = self.recorded_push(push.provider, push.delivery_id)
            assert answer is not None  # recorded, and committed before ours tried
            return answer
        else:
            for build, error, at in after.superseded:
                self.intake.take_superseded([build], error, at)
            for build, note in after.kept:
                self.intake.announce.line(build, LogLine("", note))
        finally:
            self.intake.holding = False
            self.intake.wake()
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
            self.intake.check_allowed(repo.url)
        except RepoNotAllowed:
            return Decision("ignored", "repo not in allowed_repos", repo.url)
        self._forget_deleted(repo.url, event)
        selection = select_refs(repo, event)
        builds = []
        for ref in selection.builds:
            self.intake.resolver.remember(repo.url, ref.full_ref, ref.resolved)
            if ref.resolved.kind == "branch":
                # Only branches under their short name: "v1" resolves to a branch v1
                # before a tag v1, so remembering a tag push as "v1" could shadow a branch.
                self.intake.resolver.remember(repo.url, ref.name, ref.resolved)
            image = image_name_for(settings.image_prefix, repo.url, ref.resolved.sha)
            target = Target(repo.url, ref.name, ref.resolved, image)
            outcome = self.intake.admit(
                target, push.provider, force=False, requester=None, cached=False, follows_ref=True
            )
            if outcome.status == "created" and outcome.build is not None:
                created.append(outcome.build)
            builds.append((ref.full_ref, outcome))
        # After the builds: a build a pushed ref joined is no longer only the deleted
        # ref's, and is kept.
        deleted = tuple(self._delete_ref(repo.url, ref, push, after) for ref in selection.deleted)
        if not builds and not any(d.superseded for d in deleted):
            return Decision(
                "ignored", "no ref to build", repo.url, ignored=selection.ignored, deleted=deleted
            )
        return Decision("accepted", None, repo.url, tuple(builds), selection.ignored, deleted)

    def _forget_deleted(self, url: str, push: Push) -> None:
        """Drop the resolver's cached answers for the refs ``push`` deletes, so that no
        request is answered from a ref that is gone."""
        for change in push.changes:
            if change.sha is None:
                self.intake.resolver.forget(url, change.ref)
                self.intake.resolver.forget(url, short_name(change.ref))

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
        error = deletion_error(full_ref, push.provider, push.delivery_id)
        superseded: list[str] = []
        kept: list[str] = []
        now = self.intake.clock()
        for build in self.intake.queue.of_ref(url, full_ref):
            if build.state is BuildState.QUEUED and build.supersedable:
                self.store.update(
                    build.id, state=BuildState.SUPERSEDED, error=error, finished_at=now
                )
                after.superseded.append((build, error, now))
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
