"""Live build events for whoever is watching (the CLI, event streams, pages).

Publishing never blocks and never fails the build: each subscriber has its own
queue, and a subscriber that stops reading only costs its own memory until it
unsubscribes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildEvent:
    build_id: str
    kind: str
    """``log`` (a line of output), ``phase`` (repo2docker moved on) or ``state``."""
    phase: str
    message: str
    state: str | None = None
    """For ``state`` events: the new state; a finished state is the last event."""
    seq: int | None = None
    """For ``log`` events: the line's number in the stored log, so that a reader who
    read the stored log first can skip what it has seen."""


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[BuildEvent]]] = {}
        self._listeners: list[Callable[[BuildEvent], None]] = []

    def publish(self, event: BuildEvent) -> None:
        for queue in self._subscribers.get(event.build_id, ()):
            queue.put_nowait(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must never fail a build
                log.exception("build event listener %r failed", listener)

    def add_listener(self, listener: Callable[[BuildEvent], None]) -> None:
        """Call ``listener`` with every event of every build, synchronously, in the
        publisher's task. It must not block; start a task for slow work."""
        self._listeners.append(listener)

    def watching(self, build_id: str) -> int:
        return len(self._subscribers.get(build_id, ()))

    @asynccontextmanager
    async def subscribe(self, build_id: str) -> AsyncIterator[asyncio.Queue[BuildEvent]]:
        queue: asyncio.Queue[BuildEvent] = asyncio.Queue()
        self._subscribers.setdefault(build_id, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(build_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[build_id]
