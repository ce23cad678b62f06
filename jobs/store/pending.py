"""Changes of build records that wait for the store (issue 27).

The running side of the service changes a build's record as the build starts and ends,
from callbacks that cannot answer anyone "try again": a database outage must not lose
them, nor stop the build. ``PendingUpdates`` writes each change at once when it can,
and otherwise keeps it (later fields over earlier ones) and writes it from a task of
its own every ``RETRY_SECONDS`` until the store takes it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import TemporaryError
from .base import Store

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0


class PendingUpdates:
    """``Store.update`` that keeps what the store cannot take yet. Use it on the
    event loop; ``close`` tries once more."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> dict[str, dict[str, Any]]:
        """Build id -> the fields not written yet."""
        return self._waiting

    def update(self, build_id: str, **fields: Any) -> None:
        pending = self._waiting.get(build_id)
        if pending is None:
            try:
                self._store.update(build_id, **fields)
                return
            except TemporaryError as e:
                log.warning("build %s: its record waits for the store: %s", build_id, e)
                pending = self._waiting[build_id] = {}
        pending.update(fields)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._retry(), name="pending-updates")

    def flush(self) -> None:
        """Write what waits, in order, until the store refuses one."""
        for build_id, fields in list(self._waiting.items()):
            self._store.update(build_id, **fields)
            if self._waiting.get(build_id) is fields:
                del self._waiting[build_id]

    async def _retry(self) -> None:
        while self._waiting:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                self.flush()
            except TemporaryError:
                continue

    def close(self) -> None:
        """Stop retrying; write what waits once more. What the store still refuses is
        logged: a build left ``running`` in the store is run again at the next start."""
        if self._task is not None:
            self._task.cancel()
        try:
            self.flush()
        except TemporaryError as e:
            log.error("build records not updated (%s): %s", self._waiting, e)
