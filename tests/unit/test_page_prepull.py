"""What the page at / shows of pre-pull (issue 26): its pure ``prepullView`` (in
``webhook/static/index.html``, between its BEGIN/END markers) run under Node over
``GET /api/v1/prepull``'s answers."""

from __future__ import annotations

from typing import Any

import pytest

from .page_script import call_page_function


def prepull_view(answer: Any) -> Any:
    """``prepullView(answer)`` as the page's script computes it."""
    return call_page_function("prepullView", answer)


def test_each_image_with_its_presence_on_the_selected_nodes() -> None:
    answer = {
        "enabled": True,
        "nodes": 3,
        "images": [
            {"image": "r/binder-a:1111", "present": 3, "failing": 0, "nodes": 3},
            {"image": "r/binder-b:2222", "present": 1, "failing": 2, "nodes": 3},
        ],
    }
    assert prepull_view(answer) == {
        "nodes": "on 3 selected nodes",
        "rows": [
            {"image": "r/binder-a:1111", "present": "3/3", "failing": ""},
            {"image": "r/binder-b:2222", "present": "1/3", "failing": "2"},
        ],
    }


@pytest.mark.parametrize(
    ("answer", "view"),
    [
        ({"enabled": False, "nodes": 0, "images": []}, None),  # pre-pull off: no section
        ({"enabled": True, "nodes": 1, "images": []}, {"nodes": "on 1 selected node", "rows": []}),
    ],
)
def test_off_hides_the_section_and_one_node_is_singular(answer: Any, view: Any) -> None:
    assert prepull_view(answer) == view
