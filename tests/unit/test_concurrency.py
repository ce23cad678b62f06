"""The concurrency limits (``jobs.concurrency.may_start``), pinned by golden cases."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from jobs.concurrency import may_start


class Item(NamedTuple):
    name: str
    repo: str
    queued_at: float


def started(
    waiting: list[Item], running: list[str], max_total: int, max_per_repo: int
) -> list[str]:
    chosen = may_start(
        waiting,
        running,
        max_total=max_total,
        max_per_repo=max_per_repo,
        repo_of=lambda item: item.repo,
        queued_at=lambda item: item.queued_at,
    )
    return [item.name for item in chosen]


# (what waits, the repos of what runs, max_total, max_per_repo) -> what starts, in order
CASES: dict[str, tuple[list[Item], list[str], int, int, list[str]]] = {
    "nothing waits": ([], ["a"], 2, 1, []),
    "oldest first, up to the total": (
        [Item("y", "b", 2.0), Item("x", "a", 1.0), Item("z", "c", 3.0)],
        [],
        2,
        1,
        ["x", "y"],
    ),
    "the total counts what runs": ([Item("x", "a", 1.0)], ["b", "c"], 2, 1, []),
    "a repo at its limit is passed over, younger ones of others start": (
        [Item("a1", "a", 1.0), Item("a2", "a", 2.0), Item("b1", "b", 3.0)],
        ["a"],
        3,
        1,
        ["b1"],
    ),
    "the per-repo limit counts what starts in the same pass": (
        [Item("a1", "a", 1.0), Item("a2", "a", 2.0), Item("a3", "a", 3.0)],
        [],
        5,
        2,
        ["a1", "a2"],
    ),
    "ties keep the order given": (
        [Item("second", "a", 1.0), Item("first", "b", 1.0)],
        [],
        2,
        1,
        ["second", "first"],
    ),
    "over the total already (limits lowered): nothing starts": (
        [Item("x", "a", 1.0)],
        ["b", "b", "c"],
        2,
        5,
        [],
    ),
    "the total stops the pass, not only the repo": (
        [Item("a1", "a", 1.0), Item("b1", "b", 2.0), Item("c1", "c", 3.0)],
        ["d"],
        3,
        1,
        ["a1", "b1"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_which_builds_may_start(case: str) -> None:
    waiting, running, max_total, max_per_repo, expected = CASES[case]
    assert started(waiting, running, max_total, max_per_repo) == expected


def test_the_input_is_left_alone() -> None:
    waiting = [Item("y", "b", 2.0), Item("x", "a", 1.0)]
    running = ["c"]
    started(waiting, running, 3, 1)
    assert waiting == [Item("y", "b", 2.0), Item("x", "a", 1.0)]
    assert running == ["c"]
