"""Which queued builds may start now: the concurrency limits, written once.

Both places that hold a queue use it: the coordinator for the local executor
(``coordinator.runner.Runner.wake``) and the Kubernetes queue keeper (``queue_keeper``), each
over its own items (build records, suspended Jobs). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def may_start(
    waiting: Iterable[T],
    running: Iterable[str],
    *,
    max_total: int,
    max_per_repo: int,
    repo_of: Callable[[T], str],
    queued_at: Callable[[T], Any],
) -> list[T]:
    """The items of ``waiting`` that may start now, in the order to start them.

    ``running``: the repository of each build running now (one entry per build).
    Waiting items are taken oldest first (``queued_at``, a sort key; ties keep the
    order of ``waiting``). An item starts while fewer than ``max_total`` builds run
    in all and fewer than ``max_per_repo`` of its repository (``repo_of``); an item
    whose repository is at its limit is passed over, so that younger builds of other
    repositories may start. Nothing starts once ``max_total`` is reached.
    """
    counts: Counter[str] = Counter(running)
    total = sum(counts.values())
    chosen: list[T] = []
    for item in sorted(waiting, key=queued_at):
        if total >= max_total:
            break
        repo = repo_of(item)
        if counts[repo] >= max_per_repo:
            continue
        chosen.append(item)
        counts[repo] += 1
        total += 1
    return chosen
