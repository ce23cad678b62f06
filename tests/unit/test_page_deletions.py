"""What the page at / shows of registry retention's record (issue 26): its pure
``deletionsView`` (in ``webhook/static/index.html``, between its BEGIN/END markers) run
under Node over ``GET /api/v1/retention/deletions``'s answers."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.model import ImageDeletion
from jobs.retention.records import DeletionPage

from .page_script import call_page_function


def deletions_view(answer: Any) -> Any:
    """``deletionsView(answer)`` as the page's script computes it."""
    return call_page_function("deletionsView", answer)


def test_each_deletion_with_when_and_what_it_freed() -> None:
    # the API's answer as webhook/api.py makes it (DeletionPage.to_json)
    page = DeletionPage(
        [
            ImageDeletion(
                "r/binder-a:2222",
                "binder-a",
                "sha256:" + "b" * 64,
                1796000000.5,
                "run-2",
                52_600_000,
            ),
            ImageDeletion("r/binder-a:1111", "binder-a", "sha256:" + "a" * 64, 1795000000, "run-1"),
            ImageDeletion("r/binder-c:3333", "binder-c", "sha256:" + "c" * 64, 86400, "run-0", 999),
            ImageDeletion(
                "r/binder-d:4444", "binder-d", "sha256:" + "d" * 64, 0, "run-0", 1_270_000_000
            ),
        ],
        next_cursor="abc",
    )
    assert deletions_view(page.to_json()) == [
        {
            "image": "r/binder-a:2222",
            "deleted": "2026-11-30 00:53:20 UTC",
            "freed": "52.6 MB",
            "run": "run-2",
        },
        # the registry could not say what it freed
        {
            "image": "r/binder-a:1111",
            "deleted": "2026-11-18 11:06:40 UTC",
            "freed": "",
            "run": "run-1",
        },
        {
            "image": "r/binder-c:3333",
            "deleted": "1970-01-02 00:00:00 UTC",
            "freed": "999 B",
            "run": "run-0",
        },
        {
            "image": "r/binder-d:4444",
            "deleted": "1970-01-01 00:00:00 UTC",
            "freed": "1.3 GB",
            "run": "run-0",
        },
    ]


@pytest.mark.parametrize(
    "answer",
    [
        {"deletions": [], "next_cursor": None},  # nothing deleted yet, or retention off
        None,  # the API refused (the section stays hidden)
    ],
)
def test_nothing_deleted_hides_the_section(answer: Any) -> None:
    assert deletions_view(answer) is None


def test_sizes_round_to_one_decimal_in_the_next_unit_up() -> None:
    sizes = [1000, 999_949, 999_950, 1_000_000_000_000, 5 * 10**18]
    page = {
        "deletions": [
            {"image": f"r/x:{n}", "deleted_at": 0, "freed_bytes": n, "run_id": "r"} for n in sizes
        ]
    }
    assert [row["freed"] for row in deletions_view(page)] == [
        "1.0 kB",
        "999.9 kB",
        "1.0 MB",
        "1.0 TB",
        "5000.0 PB",
    ]
