"""Record resolutions kept for a while (issue 25): ``RecordCache`` in front of a
``RecordResolver``, so that asking again for a record is answered without its API.

What is kept, and for how long, follows from what the answer is:

- a ``RecordSource`` that named its version (``RecordVersion.moves`` is False: a Zenodo
  version's record id, a Figshare or Dataverse version) resolves to the same version
  for good, and is kept until the cache is full (least recently used goes first);
- one that did not (a Zenodo concept, an unversioned article or dataset) and every
  ``DoiSource`` (where a DOI leads may change) is kept for ``ttl`` seconds, so that a
  new version is seen within ``ttl``;
- an error is never kept: a temporary one (``ProviderUnavailable``) must not turn into
  an answer, and a permanent one (no such record) may stop being true.

Concurrent requests for one source share one resolution.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from .records import DoiSource, RecordSource, RecordVersion

DEFAULT_MAX_ENTRIES = 4096


class Resolving(Protocol):
    async def resolve(self, source: RecordSource | DoiSource) -> RecordVersion:
        """The version ``source`` names now (``RecordResolver.resolve``)."""
        ...


class RecordCache:
    """See the module docstring. ``ttl``: seconds a moving resolution is kept;
    ``clock``: monotonic seconds (injected in tests)."""

    def __init__(
        self,
        resolver: Resolving,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._resolver = resolver
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._kept: OrderedDict[RecordSource | DoiSource, tuple[float | None, RecordVersion]] = (
            OrderedDict()
        )
        self._inflight: dict[RecordSource | DoiSource, asyncio.Future[RecordVersion]] = {}

    def cached(self, source: RecordSource | DoiSource) -> RecordVersion | None:
        """The kept resolution of ``source``, None when there is none or it expired."""
        hit = self._kept.get(source)
        if hit is None:
            return None
        expires, version = hit
        if expires is not None and self._clock() >= expires:
            del self._kept[source]
            return None
        self._kept.move_to_end(source)
        return version

    async def resolve(self, source: RecordSource | DoiSource) -> RecordVersion:
        """The kept resolution of ``source``, or a new one (shared with concurrent
        callers, kept as the module docstring says). Raises what the resolver raises."""
        hit = self.cached(source)
        if hit is not None:
            return hit
        future = self._inflight.get(source)
        if future is None:
            future = asyncio.ensure_future(self._resolver.resolve(source))
            self._inflight[source] = future
            future.add_done_callback(lambda _: self._inflight.pop(source, None))
        version = await asyncio.shield(future)
        self._keep(source, version)
        return version

    def _keep(self, source: RecordSource | DoiSource, version: RecordVersion) -> None:
        fixed = isinstance(source, RecordSource) and not version.moves
        self._kept[source] = (None if fixed else self._clock() + self._ttl, version)
        self._kept.move_to_end(source)
        while len(self._kept) > self._max_entries:
            self._kept.popitem(last=False)
