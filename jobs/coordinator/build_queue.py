"""The builds of this process that are queued or running, and the rules over them.

``BuildQueue`` holds two views of the same builds: every build of this process that is
queued or running, by image (one image, one build: what a request joins), and those
waiting here to be handed to the executor, in the order they came. Its rules:

- ``join``: the build of an image, which stops being supersedable once someone asks for
  its commit otherwise than by the moving ref it was asked for by;
- ``superseded_by``: the queued builds a new build of the same ref supersedes;
- ``take_superseded``, ``rollback``, ``remove``, ``finished``: builds leaving it;
- ``take_runnable``: the waiting builds that may start now (``jobs.concurrency``).

No I/O, no store, no clock: the intake and the runner record what it decides
(``tests/unit/test_build_queue.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..concurrency import may_start
from ..model import Build, BuildState
from ..sources.specs import ResolvedRef
from .push import ref_kind_of, same_ref, short_name

MOVING_KINDS = ("branch", "head")
"""Refs that move by themselves; a tag moves only when a push or the reconciler says so."""


def moves(resolved: ResolvedRef, *, follows_ref: bool) -> bool:
    """Whether a request for ``resolved`` follows a moving ref: a branch or ``HEAD``, or
    a tag a push (or the reconciler) saw move (``follows_ref``). Such a request's build
    is superseded when the ref moves again."""
    return resolved.kind in MOVING_KINDS or (follows_ref and resolved.kind == "tag")


@dataclass(frozen=True)
class Joined:
    """The queued or running build a request joined. ``pinned``: the request made it
    stop being supersedable (the caller records that)."""

    build: Build
    pinned: bool


class BuildQueue:
    """See the module docstring."""

    def __init__(self) -> None:
        self._active: dict[str, Build] = {}
        """image -> its queued or running build"""
        self._waiting: list[Build] = []
        """Queued builds not yet handed to the executor, in the order they came."""

    # -- reading ------------------------------------------------------------------

    def __iter__(self) -> Iterator[Build]:
        """Every queued or running build."""
        return iter(list(self._active.values()))

    def __len__(self) -> int:
        return len(self._active)

    def get(self, build_id: str) -> Build | None:
        """The queued or running build with id ``build_id``, if it is here."""
        return next((build for build in self._active.values() if build.id == build_id), None)

    def holds(self, image: str) -> bool:
        """Whether a build of ``image`` is queued or running here."""
        return image in self._active

    def is_waiting(self, build: Build) -> bool:
        """Whether ``build`` waits here (not yet handed to the executor)."""
        return build in self._waiting

    def counts(self) -> tuple[int, int]:
        """(queued, running) builds."""
        queued = sum(1 for build in self._active.values() if build.state is BuildState.QUEUED)
        return queued, len(self._active) - queued

    def of_ref(self, repo: str, full_ref: str) -> list[Build]:
        """The queued or running builds of ``repo`` asked for by ``full_ref`` (a branch
        or tag, ``refs/heads/…`` or ``refs/tags/…``)."""
        kind, name = ref_kind_of(full_ref), short_name(full_ref)
        return [b for b in self._active.values() if b.repo == repo and same_ref(b, kind, name)]

    # -- the rules ----------------------------------------------------------------

    def join(
        self, image: str, resolved: ResolvedRef, ref: str, *, follows_ref: bool = False
    ) -> Joined | None:
        """The queued or running build of ``image``, if there is one. A request for
        another ref than the build's, or for the commit itself (by SHA, or by a tag it
        did not see move: ``follows_ref``) pins it: it stops being supersedable, since
        that request wants this commit too."""
        build = self._active.get(image)
        if build is None:
            return None
        other_ref = not same_ref(build, resolved.kind, short_name(ref))
        pinned = build.supersedable and (other_ref or not moves(resolved, follows_ref=follows_ref))
        if pinned:
            build.supersedable = False
        return Joined(build, pinned)

    def superseded_by(self, build: Build) -> list[Build]:
        """The queued builds that the new ``build`` supersedes: of the same repository,
        ref and kind of ref, another commit, and both supersedable. Running builds never
        are (their image is named by their commit, which a newer one does not make
        wrong)."""
        if not build.supersedable:
            return []
        return [
            other
            for other in self._active.values()
            if other.state is BuildState.QUEUED
            and other.supersedable
            and other.repo == build.repo
            and other.ref == build.ref
            and other.ref_kind == build.ref_kind
            and other.sha != build.sha
        ]

    def add(self, build: Build) -> None:
        """A new queued build: joinable by its image, waiting to be handed over."""
        self._active[build.image] = build
        self._waiting.append(build)

    def take_superseded(self, builds: list[Build], error: str, at: float) -> list[Build]:
        """Take ``builds`` off the queue as superseded at ``at`` with ``error`` (their
        records say so already). Returns those that were handed to the executor and
        wait there: the caller takes them back from it."""
        handed = []
        for build in builds:
            if build in self._waiting:
                self._waiting.remove(build)
            else:
                handed.append(build)
            self.finished(build)
            build.state, build.finished_at, build.error = BuildState.SUPERSEDED, at, error
        return handed

    def rollback(self, builds: list[Build]) -> None:
        """Forget ``builds``, added in a transaction that was rolled back."""
        for build in builds:
            if build in self._waiting:
                self._waiting.remove(build)
            self.finished(build)

    def remove(self, build: Build) -> bool:
        """Take a waiting ``build`` off the queue (a cancel); False when it is not
        waiting here (it runs, or an executor holds it)."""
        if build not in self._waiting:
            return False
        self._waiting.remove(build)
        self.finished(build)
        return True

    def requeue(self, build: Build) -> None:
        """``build``, handed over already, waits here again (it will be tried later)."""
        if build not in self._waiting:
            self._waiting.append(build)

    def finished(self, build: Build) -> None:
        """``build`` is no longer queued or running here. Another build of its image
        that took its place stays."""
        if self._active.get(build.image) is build:
            del self._active[build.image]

    def take_runnable(
        self,
        *,
        max_total: int,
        max_per_repo: int,
        hand_all: bool = False,
        due: Callable[[Build], bool] = lambda build: True,
    ) -> list[Build]:
        """The waiting builds to start now, taken off the waiting list, in the order to
        start them. Only ``due`` builds (not waiting for a retry) are taken. ``hand_all``:
        every due build (an executor that holds the queue and the limits itself);
        otherwise the concurrency limits decide (``jobs.concurrency.may_start``), counting
        the builds running now."""
        candidates = [build for build in self._waiting if due(build)]
        if not hand_all:
            running = (b.repo for b in self._active.values() if b.state is BuildState.RUNNING)
            candidates = may_start(
                candidates,
                running,
                max_total=max_total,
                max_per_repo=max_per_repo,
                repo_of=lambda build: build.repo,
                queued_at=lambda build: build.created_at,
            )
        for build in candidates:
            self._waiting.remove(build)
        return candidates
