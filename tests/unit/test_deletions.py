"""A push that deletes a branch or tag (issue 20): its queued builds are superseded by
the deletion, in the delivery's transaction; running builds, and builds someone else
asked for too, go on with a line in their log. ``BuildService`` over a real store and
the fakes of ``tests/fakes`` (``tests/integration/test_deletions.py`` does it with real
deliveries, git, a registry and the forge stand-in)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.coordinator.push import Push, PushRequest, RefChange
from jobs.model import BuildState
from jobs.service import BuildService
from jobs.sources.refs import RefResolver
from jobs.sources.specs import ResolvedRef
from tests.fakes import FakeExecutor, FakeRegistry

from . import test_service
from .test_service import REPO, SHA, FullStore, Rig, ended, settings, stored_states

rig = test_service.rig
store = test_service.store

pytestmark = pytest.mark.anyio

SETTINGS: dict[str, Any] = {
    "repos": [{"url": REPO, "branches": ["main", "feature/*"], "tags": ["v*"]}],
    "limits": {"max_concurrent_builds": 1},
}


def push(delivery: str | None, *changes: tuple[str, str | None]) -> PushRequest:
    event = Push((REPO,), "main", tuple(RefChange(ref, sha) for ref, sha in changes))
    return PushRequest("github", delivery, event)


async def blocked(rig: Callable[..., Any]) -> Rig:
    """A rig whose only build slot is taken by a build of another commit."""
    r: Rig = await rig(**SETTINGS)
    blocker = (await r.service.request(REPO, SHA[6])).build
    assert blocker is not None
    await r.executor.running(blocker.id)
    return r


@pytest.mark.parametrize("ref", ["refs/heads/feature/x", "refs/tags/v1"])
async def test_a_deletion_supersedes_the_queued_builds_of_its_ref(
    rig: Callable[..., Any], ref: str
) -> None:
    r = await blocked(rig)
    pushed = r.service.receive_push(push("d-push", (ref, SHA[0])))
    (queued,) = pushed.answer["builds"]
    assert queued["outcome"] == "created"

    answer = r.service.receive_push(push("d-delete", (ref, None)))
    assert answer.answer == {
        "outcome": "accepted",
        "reason": None,
        "repo": REPO,
        "builds": [],
        "deleted": [{"ref": ref, "superseded": [queued["id"]], "kept": []}],
        "ignored": [],
    }
    build = r.service.get(queued["id"])
    stored = r.store.get(queued["id"])
    assert stored is not None
    for record in (build, stored):
        assert record.state is BuildState.SUPERSEDED
        assert record.error == f"superseded by the deletion of {ref} in github delivery d-delete"
        assert record.finished_at == r.clock.now
    # the slot frees: the superseded build never runs
    r.executor.finish(r.executor.started[0])
    await r.service.wait_idle()
    assert queued["id"] not in r.executor.started
    # a redelivery is answered from the record and changes nothing
    again = r.service.receive_push(push("d-delete", (ref, None)))
    assert (again.duplicate, again.answer) == (True, answer.answer)


async def test_a_deletion_of_a_ref_that_does_not_build_only_says_so(
    rig: Callable[..., Any],
) -> None:
    r = await blocked(rig)
    answer = r.service.receive_push(push("d-1", ("refs/heads/topic", None), ("refs/tags/v9", None)))
    assert answer.answer["outcome"] == "ignored"
    assert answer.answer["reason"] == "no ref to build"
    assert answer.answer["deleted"] == [{"ref": "refs/tags/v9", "superseded": [], "kept": []}]
    assert answer.answer["ignored"] == [{"ref": "refs/heads/topic", "reason": "deleted"}]


async def test_a_running_build_of_a_deleted_ref_goes_on_and_its_log_says_why(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(**SETTINGS)
    pushed = r.service.receive_push(push("d-push", ("refs/heads/feature/x", SHA[0])))
    build_id = pushed.answer["builds"][0]["id"]
    await r.executor.running(build_id)
    answer = r.service.receive_push(push("d-delete", ("refs/heads/feature/x", None)))
    assert answer.answer["outcome"] == "ignored"
    assert answer.answer["deleted"] == [
        {"ref": "refs/heads/feature/x", "superseded": [], "kept": [build_id]}
    ]
    assert (
        "",
        "refs/heads/feature/x was deleted (github delivery d-delete); "
        "this build goes on: it is running",
    ) in r.store.logs(build_id)
    r.executor.finish(build_id)
    assert (await ended(r, build_id)).state is BuildState.BUILT


async def test_a_queued_build_someone_else_asked_for_is_kept(rig: Callable[..., Any]) -> None:
    r = await blocked(rig)
    by_branch = r.service.receive_push(push("d-1", ("refs/heads/feature/x", SHA[0])))
    build_id = by_branch.answer["builds"][0]["id"]
    # another branch at the same commit, and the same commit by SHA, join it
    also = r.service.receive_push(push("d-2", ("refs/heads/feature/y", SHA[0])))
    assert also.answer["builds"][0]["outcome"] == "joined"
    tag = r.service.receive_push(push("d-3", ("refs/tags/v1", SHA[1])))
    tag_id = tag.answer["builds"][0]["id"]
    assert (await r.service.request(REPO, SHA[1])).status == "joined"

    answer = r.service.receive_push(
        push("d-4", ("refs/heads/feature/x", None), ("refs/tags/v1", None))
    )
    assert answer.answer["deleted"] == [
        {"ref": "refs/heads/feature/x", "superseded": [], "kept": [build_id]},
        {"ref": "refs/tags/v1", "superseded": [], "kept": [tag_id]},
    ]
    assert stored_states(r)[build_id] is stored_states(r)[tag_id] is BuildState.QUEUED
    assert (
        "",
        "refs/tags/v1 was deleted (github delivery d-4); this build goes on: "
        "its commit was asked for otherwise too",
    ) in r.store.logs(tag_id)


async def test_a_tag_asked_for_by_name_is_not_superseded_by_its_deletion(
    rig: Callable[..., Any],
) -> None:
    r = await blocked(rig)
    r.service.resolver.remember(REPO, "v1", ResolvedRef(SHA[0], "tag", "refs/tags/v1"))
    asked = await r.service.request(REPO, "v1")
    assert asked.build is not None
    answer = r.service.receive_push(push("d-1", ("refs/tags/v1", None)))
    assert answer.answer["deleted"] == [
        {"ref": "refs/tags/v1", "superseded": [], "kept": [asked.build.id]}
    ]


async def test_a_moved_tag_supersedes_the_queued_build_of_where_it_was(
    rig: Callable[..., Any],
) -> None:
    r = await blocked(rig)
    first = r.service.receive_push(push("d-1", ("refs/tags/v1", SHA[0])))
    moved = r.service.receive_push(push("d-2", ("refs/tags/v1", SHA[1])))
    old_id, new_id = first.answer["builds"][0]["id"], moved.answer["builds"][0]["id"]
    assert stored_states(r)[old_id] is BuildState.SUPERSEDED
    assert r.service.get(old_id).error == f"superseded by build {new_id} of {SHA[1]}"


async def test_a_branch_and_a_tag_of_one_name_do_not_supersede_each_other(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(
        repos=[{"url": REPO, "branches": ["v1"], "tags": ["v1"]}],
        limits={"max_concurrent_builds": 1},
    )
    blocker = (await r.service.request(REPO, SHA[6])).build
    assert blocker is not None
    await r.executor.running(blocker.id)
    tag = r.service.receive_push(push("d-1", ("refs/tags/v1", SHA[0])))
    r.service.receive_push(push("d-2", ("refs/heads/v1", SHA[1])))
    deleted = r.service.receive_push(push("d-3", ("refs/heads/v1", None)))
    tag_id = tag.answer["builds"][0]["id"]
    assert stored_states(r)[tag_id] is BuildState.QUEUED
    assert tag_id not in deleted.answer["deleted"][0]["superseded"]


async def test_a_deleted_ref_is_no_longer_answered_from_the_cache(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(**SETTINGS)
    r.service.receive_push(push("d-1", ("refs/heads/feature/x", SHA[0])))
    assert r.service.resolver.cached(REPO, "feature/x") is not None
    r.service.receive_push(push("d-2", ("refs/heads/feature/x", None)))
    assert r.service.resolver.cached(REPO, "feature/x") is None
    assert r.service.resolver.cached(REPO, "refs/heads/feature/x") is None


async def test_a_deletion_whose_answer_cannot_be_recorded_supersedes_nothing(
    tmp_path: Path,
) -> None:
    registry = FakeRegistry()
    executor = FakeExecutor(registry)
    full = FullStore(tmp_path / "builds.sqlite")
    service = BuildService(
        settings(tmp_path, **SETTINGS),
        store=full,
        registry=registry,
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=executor,
    )
    await service.start()
    try:
        blocker = (await service.request(REPO, SHA[6])).build
        assert blocker is not None
        await executor.running(blocker.id)
        service.resolver.remember(REPO, "main", ResolvedRef(SHA[1], "branch", "refs/heads/main"))
        by_branch = (await service.request(REPO, "main")).build
        assert by_branch is not None
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            service.receive_push(push("d-1", ("refs/heads/main", None)))
        assert service.get(by_branch.id).state is BuildState.QUEUED
        stored = full.get(by_branch.id)
        assert stored is not None
        assert stored.state is BuildState.QUEUED
        executor.finish(blocker.id)
        await executor.running(by_branch.id)  # still queued in memory: it runs
    finally:
        await service.close()
