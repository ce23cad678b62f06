"""What the page at / sends when a person asks for a build (issue 25): its pure
``requestBody`` (in ``webhook/static/index.html``, between its BEGIN/END markers) run
under Node. Every form the API's ``repo`` takes goes there as typed."""

from __future__ import annotations

from typing import Any

import pytest

from .page_script import call_page_function


def request_body(repo: str, ref: str) -> Any:
    """``requestBody(repo, ref)`` as the page's script computes it."""
    return call_page_function("requestBody", repo, ref)


@pytest.mark.parametrize(
    ("repo", "ref", "body"),
    [
        ("https://github.com/o/r", "", {"repo": "https://github.com/o/r"}),
        (" https://github.com/o/r/tree/dev ", "", {"repo": "https://github.com/o/r/tree/dev"}),
        ("gh/o/r/main", "", {"repo": "gh/o/r/main"}),
        ("https://github.com/o/r", " v1 ", {"repo": "https://github.com/o/r", "ref": "v1"}),
        (
            "https://doi.org/10.5281/zenodo.3242074",
            "",
            {"repo": "https://doi.org/10.5281/zenodo.3242074"},
        ),
        ("10.5281/zenodo.3242074", "", {"repo": "10.5281/zenodo.3242074"}),
        ("https://zenodo.org/records/3242074", "", {"repo": "https://zenodo.org/records/3242074"}),
        ("", "main", None),
        ("   ", "", None),
    ],
)
def test_what_is_typed_is_asked_as_repo(repo: str, ref: str, body: Any) -> None:
    assert request_body(repo, ref) == body
