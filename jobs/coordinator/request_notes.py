"""Requests answered from the registry (``cached``), written to the store for retention
(issue 26): an image requested within ``retention.keep_days`` is kept, and a cache hit
records nothing else.

Written at most once per image per ``every`` seconds by each process, so that the hot
path of cache hits costs a dict lookup. Best effort: a store that does not answer
costs the note, never the request (a cache hit answers without the store).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from ..store import Store, StoreUnavailable

log = logging.getLogger(__name__)

NOTE_SECONDS = 3600.0
"""How often one process writes the request of one image, at most."""

_REMEMBERED = 10_000


def note_interval(keep_days: float) -> float:
    """``NOTE_SECONDS``, or half of ``keep_days`` when that is shorter: a note is never
    older than the window that keeps its image. Pure."""
    return min(NOTE_SECONDS, keep_days * 86400 / 2)


class RequestNotes:
    """Writes ``Store.note_request`` for requested images, throttled per image."""

    def __init__(self, store: Store, clock: Callable[[], float], every: float) -> None:
        self.store = store
        self.clock = clock
        self.every = every
        self._noted: OrderedDict[str, float] = OrderedDict()

    def note(self, image: str) -> None:
        """Record a request of ``image`` now, unless this process did within ``every``."""
        now = self.clock()
        last = self._noted.get(image)
        if last is not None and now - last < self.every:
            return
        self._noted[image] = now
        self._noted.move_to_end(image)
        while len(self._noted) > _REMEMBERED:
            self._noted.popitem(last=False)
        try:
            self.store.note_request(image, now)
        except StoreUnavailable as e:
            log.warning("the request of %s was not recorded for retention: %s", image, e)
