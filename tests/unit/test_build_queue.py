"""The queue's rules alone (``jobs.coordinator.build_queue.BuildQueue``): join, supersede,
rollback, what may start. No store, no service, no event loop."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jobs.coordinator.build_queue import BuildQueue, moves
from jobs.model import Build, BuildState
from jobs.sources.specs import ResolvedRef

REPO = "https://git.example.org/team/repo"
OTHER = "https://git.example.org/team/other"
SHA = [f"{i:x}" * 40 for i in range(1, 9)]


def build(n: int, *, sha: int | None = None, **fields: Any) -> Build:
    """Build ``n`` of ``REPO``'s ``main`` branch at ``SHA[sha]`` (default ``SHA[n]``),
    queued at ``n``."""
    commit = SHA[n if sha is None else sha]
    values: dict[str, Any] = {
        "id": f"{n:032x}",
        "repo": REPO,
        "ref": "main",
        "ref_kind": "branch",
        "sha": commit,
        "image": f"registry.test/repo:{commit}",
        "name": f"r2d-repo-{n}",
        "state": BuildState.QUEUED,
        "trigger": "api",
        "created_at": float(n),
    }
    values.update(fields)
    return Build(**values)


def branch(sha: str, name: str = "main") -> ResolvedRef:
    return ResolvedRef(sha, "branch", f"refs/heads/{name}")


def test_one_image_one_build_and_who_pins_it() -> None:
    queue = BuildQueue()
    first = build(0)
    queue.add(first)
    assert queue.join("registry.test/repo:other", branch(SHA[0]), "main") is None
    # the same branch asks again: it may still be superseded
    joined = queue.join(first.image, branch(SHA[0]), "main")
    assert joined is not None
    assert (joined.build, joined.pinned, first.supersedable) == (first, False, True)
    # by SHA: that request wants this very commit
    by_sha = queue.join(first.image, ResolvedRef(SHA[0], "commit", SHA[0]), SHA[0])
    assert by_sha is not None
    assert (by_sha.pinned, first.supersedable) == (True, False)
    # once pinned, no one pins it again
    again = queue.join(first.image, ResolvedRef(SHA[0], "commit", SHA[0]), SHA[0])
    assert again is not None
    assert again.pinned is False


def test_another_ref_or_an_unmoved_tag_pins_a_build() -> None:
    for resolved, ref, follows_ref, pinned in [
        (branch(SHA[0], "dev"), "dev", False, True),
        (ResolvedRef(SHA[0], "tag", "refs/tags/v1"), "v1", False, True),
        (ResolvedRef(SHA[0], "head", "HEAD"), "HEAD", False, True),
    ]:
        queue = BuildQueue()
        queue.add(build(0))
        joined = queue.join(build(0).image, resolved, ref, follows_ref=follows_ref)
        assert joined is not None
        assert joined.pinned is pinned, (resolved, ref)
    # a tag build that a push saw move is asked for by the same moving tag
    queue = BuildQueue()
    tagged = build(0, ref="v1", ref_kind="tag")
    queue.add(tagged)
    tag = ResolvedRef(SHA[0], "tag", "refs/tags/v1")
    joined = queue.join(tagged.image, tag, "v1", follows_ref=True)
    assert joined is not None
    assert joined.pinned is False
    assert moves(tag, follows_ref=True)
    assert not moves(tag, follows_ref=False)
    assert moves(ResolvedRef(SHA[0], "head", "HEAD"), follows_ref=False)


def test_a_newer_commit_supersedes_queued_builds_of_its_ref_only() -> None:
    queue = BuildQueue()
    old = build(0)
    running = build(1, state=BuildState.RUNNING)
    pinned = build(2, supersedable=False)
    dev = build(3, ref="dev")
    tag = build(4, ref="main", ref_kind="tag")
    elsewhere = build(5, repo=OTHER)
    for each in (old, running, pinned, dev, tag, elsewhere):
        queue.add(each)
    newer = build(6)
    assert queue.superseded_by(newer) == [old]
    assert queue.superseded_by(replace(newer, supersedable=False)) == []
    same_commit = build(7, sha=0)
    assert queue.superseded_by(same_commit) == []


def test_superseded_builds_leave_the_queue_and_those_handed_over_are_named() -> None:
    queue = BuildQueue()
    waiting, handed = build(0), build(1)
    queue.add(waiting)
    queue.add(handed)
    assert queue.take_runnable(
        max_total=9, max_per_repo=9, hand_all=True, due=lambda b: b is handed
    )
    assert queue.take_superseded([waiting, handed], "superseded by build x", 42.0) == [handed]
    assert len(queue) == 0
    assert not queue.is_waiting(waiting)
    for each in (waiting, handed):
        assert (each.state, each.finished_at, each.error) == (
            BuildState.SUPERSEDED,
            42.0,
            "superseded by build x",
        )


def test_a_rolled_back_push_leaves_nothing_behind_and_keeps_the_others() -> None:
    queue = BuildQueue()
    kept = build(0)
    queue.add(kept)
    created = [build(1), build(2)]
    for each in created:
        queue.add(each)
    queue.rollback(created)
    assert list(queue) == [kept]
    assert queue.take_runnable(max_total=9, max_per_repo=9) == [kept]


def test_what_may_start_follows_the_limits_oldest_first() -> None:
    queue = BuildQueue()
    running = build(0, state=BuildState.RUNNING)
    queue.add(running)
    assert queue.take_runnable(max_total=9, max_per_repo=9, hand_all=True) == [running]
    same_repo = [build(3), build(1)]
    other_repo = build(2, repo=OTHER)
    for each in (*same_repo, other_repo):
        queue.add(each)
    # one slot left in all, one per repository: the repository that runs waits
    assert queue.take_runnable(max_total=2, max_per_repo=1) == [other_repo]
    other_repo.state = BuildState.RUNNING
    assert queue.take_runnable(max_total=2, max_per_repo=1) == []
    queue.finished(running)
    queue.finished(other_repo)
    # oldest first (created_at), not the order they came in
    assert queue.take_runnable(max_total=5, max_per_repo=5) == [same_repo[1], same_repo[0]]


def test_builds_not_due_wait_and_a_retried_build_waits_again() -> None:
    queue = BuildQueue()
    first, second = build(0), build(1)
    queue.add(first)
    queue.add(second)
    assert queue.take_runnable(max_total=9, max_per_repo=9, due=lambda b: b is second) == [second]
    assert queue.is_waiting(first)
    queue.requeue(second)
    queue.requeue(second)
    assert queue.take_runnable(max_total=9, max_per_repo=9, hand_all=True) == [first, second]


def test_a_cancel_takes_only_a_waiting_build() -> None:
    queue = BuildQueue()
    waiting, handed = build(0), build(1)
    queue.add(waiting)
    queue.add(handed)
    queue.take_runnable(max_total=9, max_per_repo=9, due=lambda b: b is handed)
    assert queue.remove(handed) is False
    assert queue.remove(waiting) is True
    assert list(queue) == [handed]
    assert queue.get(handed.id) is handed
    assert queue.get(waiting.id) is None


def test_a_finished_build_does_not_take_its_successor_along() -> None:
    queue = BuildQueue()
    old = build(0)
    queue.add(old)
    queue.finished(old)
    successor = build(1, sha=0)  # the same image, asked for again
    queue.add(successor)
    queue.finished(old)
    assert queue.holds(successor.image)
    assert queue.counts() == (1, 0)


def test_the_builds_of_a_deleted_ref() -> None:
    queue = BuildQueue()
    main, tag, other = build(0), build(1, ref="v1", ref_kind="tag"), build(2, repo=OTHER)
    full = build(3, ref="refs/heads/main")
    for each in (main, tag, other, full):
        queue.add(each)
    assert queue.of_ref(REPO, "refs/heads/main") == [main, full]
    assert queue.of_ref(REPO, "refs/tags/v1") == [tag]
    assert queue.of_ref(REPO, "refs/heads/v1") == []
