"""Following a build: its story so far, then its live events (``BuildService.watch``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .events import BuildEvent
from .model import BuildState

if TYPE_CHECKING:
    from .door import Door


async def watch(service: Door, build_id: str, poll_interval: float) -> AsyncIterator[BuildEvent]:
    """The build's story from the start: ``queued``, its state now, the log lines it
    wrote so far, then live events until the first finished state (the last one).

    The state and the stored lines are read right after subscribing, with no await
    in between, and live lines already read are skipped by their number: no line is
    lost or repeated. After ``poll_interval`` seconds of silence the build's record and
    the lines stored since are read again (a build another process runs announces
    nothing here). Raises
    ``NotFound``.
    """
    async with service.events.subscribe(build_id) as queue:
        build = service.get(build_id)
        state = BuildEvent(build_id, "state", "", build.error or "", state=str(build.state))
        stored = service.store.logs(build_id)
        seen = len(stored) - 1
        yield BuildEvent(build_id, "state", "", "", state=str(BuildState.QUEUED))
        if build.state is BuildState.RUNNING:
            yield state
        for phase, message in stored:
            yield BuildEvent(build_id, "log", phase, message)
        if build.state.finished:
            yield state
            return
        while True:
            try:
                if queue.empty():
                    # asyncio.timeout, not wait_for: no Task per event (500 watchers
                    # of one build wait here at once); Queue.get is safe to cancel
                    async with asyncio.timeout(poll_interval):
                        event = await queue.get()
                else:
                    event = queue.get_nowait()
            except TimeoutError:
                # lines another process (a replica sharing the database) stored meanwhile
                for phase, message in service.store.logs(build_id, after=seen):
                    seen += 1
                    yield BuildEvent(build_id, "log", phase, message, seq=seen)
                build = service.get(build_id)
                if build.state.finished:
                    yield BuildEvent(
                        build_id, "state", "", build.error or "", state=str(build.state)
                    )
                    return
                continue
            if event.kind == "log" and event.seq is not None and event.seq <= seen:
                continue
            yield event
            if event.kind == "state" and event.state and BuildState(event.state).finished:
                return
