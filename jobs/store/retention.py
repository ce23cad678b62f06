"""Old build logs leave the store (``build_logs.retention_days``, issue #12).

Log lines are most of what the state file holds; without a bound it grows with
every build. The server deletes the lines of builds that finished longer ago than
the retention, in short batches on a worker thread, so neither the event loop nor
other writers wait long. SQLite reuses the freed pages, so the file stops growing
(it does not shrink; ``VACUUM`` would lock the database for the whole copy);
PostgreSQL's autovacuum does the same for its tables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .base import Store

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0
"""How often the server looks for logs past the retention."""

BATCH = 2000
"""Lines deleted per transaction."""


async def prune_old_logs(
    store: Store, retention_days: float, *, clock: Callable[[], float] = time.time
) -> int:
    """Delete the log lines of builds that finished more than ``retention_days`` days
    before ``clock()``; returns how many. ``retention_days`` 0 deletes nothing."""
    if retention_days <= 0:
        return 0
    cutoff = clock() - retention_days * 86400.0
    total = 0
    while True:
        deleted = await asyncio.to_thread(store.prune_logs, cutoff, batch=BATCH)
        total += deleted
        if deleted < BATCH:
            return total


async def prune_logs_forever(
    store: Store,
    retention_days: float,
    *,
    interval: float = PRUNE_INTERVAL_SECONDS,
    clock: Callable[[], float] = time.time,
) -> None:
    """``prune_old_logs`` at start and then every ``interval`` seconds, until cancelled.
    A failed round is logged and tried again at the next one."""
    while True:
        try:
            deleted = await prune_old_logs(store, retention_days, clock=clock)
        except Exception:
            log.exception("pruning old build logs failed")
        else:
            if deleted:
                log.info("deleted %d log lines of builds older than the retention", deleted)
        await asyncio.sleep(interval)
