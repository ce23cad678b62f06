"""The BinderHub stream's last event names the image on every path to it (issue 20): a
cache hit, the stream's own build, and a build it joined. The whole ``build_events``
generator over ``BuildService`` with a real store and the fakes of ``tests/fakes``;
the events as clients receive them are pinned (golden)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from jobs.naming import image_name_for
from webhook.binderhub import build_events
from webhook.sse import sse_event

from . import test_service
from .test_service import PREFIX, REPO, SHA, Rig

pytestmark = pytest.mark.anyio

rig = test_service.rig
store = test_service.store

SPEC = f"{quote(REPO, safe='')}/{SHA[0]}"
IMAGE = image_name_for(PREFIX, REPO, SHA[0])
BUILT = (
    f'data: {{"phase":"ready","message":"Done! Image built\\n","imageName":"{IMAGE}",'
    f'"image":"{IMAGE}"}}\n\n'
)
FOUND = (
    f'data: {{"phase":"ready","message":"Done! Found built image\\n","imageName":"{IMAGE}",'
    f'"image":"{IMAGE}"}}\n\n'
)


async def stream(r: Rig) -> list[str]:
    """Every event of one stream for ``SPEC``, framed as sent."""
    return [
        sse_event(event)
        async for event in build_events(r.service, "git", SPEC, build_only=True, poll_interval=1)
    ]


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (at most 10 s)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_a_cache_hit_is_ready_at_once_and_names_the_image(rig: Callable[..., Any]) -> None:
    r: Rig = await rig()
    r.registry.push(IMAGE)
    assert await stream(r) == [FOUND]


async def test_a_build_and_the_stream_that_joined_it_both_end_naming_the_image(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig()
    first = asyncio.create_task(stream(r))
    await until(lambda: bool(r.store.recent()))  # the first stream created the build
    (build,) = r.store.recent()
    await r.executor.running(build.id)
    joined = asyncio.create_task(stream(r))
    await until(lambda: r.service.events.watching(build.id) == 2)
    r.executor.finish(build.id)
    own, other = await asyncio.wait_for(asyncio.gather(first, joined), 10)
    assert own[-1] == other[-1] == BUILT
    assert own[0] == 'data: {"phase":"waiting","message":"Waiting for build to start...\\n"}\n\n'
    assert len(r.store.recent()) == 1
