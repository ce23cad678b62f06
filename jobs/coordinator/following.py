"""Following a build, and following a request until its image is ready.

- ``watch``: one build's story so far, then its live events until it finishes
  (``BuildService.watch``; the API's ``?follow``).
- ``follow``: a request asked again each time its build is superseded by a newer commit
  of the ref (or the ref's deletion), until there is an image or a failure (the
  BinderHub stream, the CLI).

Both take the part of the pipeline they read as a small protocol, not the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from ..events import BuildEvent, EventHub
from ..model import Build, BuildOutcome, BuildState
from ..store import Store
from .build_requests import BuildRequest

WATCH_POLL_SECONDS = 10.0
"""Seconds of silence after which a watched build's state is read again. Builds of
this process announce their end; a build that another process runs (the CLI, another
replica) does not, and only its record says when it finished."""

MAX_SUPERSEDED = 3
"""How many times ``follow`` asks again after its build was superseded before giving
up (``MovedOn``)."""


class Watched(Protocol):
    """What ``watch`` reads: a build's record (``get``), its stored log lines
    (``store.logs``) and its live events (``events``)."""

    @property
    def events(self) -> EventHub: ...

    @property
    def store(self) -> Store: ...

    def get(self, build_id: str) -> Build: ...


class Requests(Protocol):
    """What ``follow`` asks: ``BuildService`` (or its intake)."""

    async def receive_request(self, req: BuildRequest) -> BuildOutcome: ...

    def watch(
        self, build_id: str, *, poll_interval: float = WATCH_POLL_SECONDS
    ) -> AsyncIterator[BuildEvent]: ...


@dataclass(frozen=True)
class Answered:
    """The request was answered (asked again after a ``Superseded``): a cache hit or a
    remembered failure end ``follow``; a build created or joined is watched next."""

    outcome: BuildOutcome


@dataclass(frozen=True)
class Superseded:
    """The watched build of ``ref`` was superseded (``reason``: its error, naming the
    newer build or the ref's deletion); the request is asked again."""

    ref: str
    reason: str


@dataclass(frozen=True)
class MovedOn:
    """``ref`` moved on ``times`` times while ``follow`` waited: it gives up."""

    ref: str
    times: int

    @property
    def message(self) -> str:
        return f"{self.ref} moved on {self.times} times while waiting; ask again"


Followed = Answered | BuildEvent | Superseded | MovedOn
"""What ``follow`` yields."""


async def follow(
    requests: Requests,
    request: BuildRequest,
    *,
    poll_interval: float = WATCH_POLL_SECONDS,
    max_superseded: int = MAX_SUPERSEDED,
) -> AsyncIterator[Followed]:
    """Ask for ``request`` and follow the answer to its end: ``Answered`` first; for a
    build created or joined, its events (``watch``) until its last state, except that a
    superseded build yields ``Superseded`` and the request is asked again (at most
    ``max_superseded`` times, then ``MovedOn``). The last item is an ``Answered``
    without a build to watch (``cached``, ``failed-before``), a finished state event
    other than ``superseded``, or ``MovedOn``. Raises what ``receive_request`` raises
    (``jobs.errors`` types)."""
    ref = request.ref or "HEAD"
    for _ in range(max_superseded + 1):
        outcome = await requests.receive_request(request)
        ref = outcome.ref
        yield Answered(outcome)
        if outcome.build is None or outcome.status == "failed-before":
            return
        async for event in requests.watch(outcome.build.id, poll_interval=poll_interval):
            if event.state == BuildState.SUPERSEDED:
                yield Superseded(ref, event.message)
                break
            yield event
        else:
            return
    yield MovedOn(ref, max_superseded + 1)


async def watch(
    service: Watched, build_id: str, poll_interval: float = WATCH_POLL_SECONDS
) -> AsyncIterator[BuildEvent]:
    """The build's story from the start: ``queued``, its state now, the log lines it
    wrote so far, then live events until the first finished state (the last one).

    The state and the stored lines are read right after subscribing, with no await
    in between, and live lines already read are skipped by their number: no line is
    lost or repeated. After ``poll_interval`` seconds of silence the build's record and
    the lines stored since are read again (a build another process runs announces
    nothing here). Raises ``NotFound``.
    """
    async with service.events.subscribe(build_id) as queue:
        build = service.get(build_id)
        stored = service.store.logs(build_id)
        state = BuildEvent(build_id, "state", "", build.error or "", state=str(build.state))
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
            if event.kind == "log" and event.seq is not None:
                if event.seq <= seen:
                    continue
                seen = event.seq  # a later poll reads only what was stored after it
            yield event
            if event.kind == "state" and event.state and BuildState(event.state).finished:
                return
