"""Following a request until its image is ready (``jobs.coordinator.following.follow``),
across supersedes, over the service of ``test_service`` (a real store, the fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from jobs.coordinator.build_requests import BuildRequest
from jobs.coordinator.following import Answered, Followed, MovedOn, Superseded, follow
from jobs.events import BuildEvent
from jobs.model import BuildState
from jobs.naming import image_name_for

from . import test_service
from .test_service import OTHER, PREFIX, REPO, SHA, Rig, on_branch

pytestmark = pytest.mark.anyio

rig = test_service.rig
store = test_service.store


async def next_of_kind(items: AsyncIterator[Followed], kind: type) -> Any:
    """The next item of ``items`` that is a ``kind`` (the others are skipped)."""
    async for item in items:
        if isinstance(item, kind):
            return item
    raise AssertionError(f"follow ended without a {kind.__name__}")


async def queued_behind_a_running_build(r: Rig) -> None:
    """One build of another repository takes the only slot: what is asked next waits."""
    blocker = await r.service.request(OTHER, SHA[5])
    assert blocker.build is not None
    await r.executor.running(blocker.build.id)


async def test_a_superseded_build_is_followed_to_the_newer_commits_image(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 1})
    await queued_behind_a_running_build(r)
    on_branch(r, SHA[0])
    items = follow(r.service, BuildRequest(REPO, "main"), poll_interval=1)
    first = await next_of_kind(items, Answered)
    assert first.outcome.status == "created"
    assert first.outcome.sha == SHA[0]

    on_branch(r, SHA[1])  # main moves on while the first build waits
    newer = await r.service.request(REPO, "main")
    assert newer.build is not None

    superseded = await next_of_kind(items, Superseded)
    assert superseded.ref == "main"
    assert superseded.reason == f"superseded by build {newer.build.id} of {SHA[1]}"
    again = await next_of_kind(items, Answered)
    assert (again.outcome.status, again.outcome.build) == ("joined", newer.build)

    r.executor.finish(r.executor.started[0])  # the blocker ends: the newer build runs
    await r.executor.running(newer.build.id)
    r.executor.finish(newer.build.id)
    rest = [item async for item in items]
    last = rest[-1]
    assert isinstance(last, BuildEvent)
    assert last.state == BuildState.BUILT
    assert not any(isinstance(item, (Answered, Superseded, MovedOn)) for item in rest)


async def test_follow_gives_up_when_the_ref_keeps_moving(rig: Callable[..., Any]) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 1})
    await queued_behind_a_running_build(r)
    on_branch(r, SHA[0])
    items = follow(r.service, BuildRequest(REPO, "main"), poll_interval=1, max_superseded=0)
    await next_of_kind(items, Answered)
    on_branch(r, SHA[1])
    await r.service.request(REPO, "main")
    rest = [item async for item in items]
    assert isinstance(rest[-2], Superseded)
    assert rest[-1] == MovedOn("main", 1)
    assert rest[-1].message == "main moved on 1 times while waiting; ask again"


async def test_a_cache_hit_is_the_only_answer(rig: Callable[..., Any]) -> None:
    r: Rig = await rig()
    r.registry.push(image_name_for(PREFIX, REPO, SHA[0]))
    items = [item async for item in follow(r.service, BuildRequest(REPO, SHA[0]))]
    assert len(items) == 1
    assert isinstance(items[0], Answered)
    assert items[0].outcome.status == "cached"
