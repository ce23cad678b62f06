"""``build_query``: the text of a builds listing's query parameters to a typed query."""

from __future__ import annotations

import pytest

from jobs.coordinator.build_requests import MAX_PAGE, BuildQuery, build_query
from jobs.errors import InvalidRequest
from jobs.model import BuildState


def test_no_parameters_is_the_first_page_of_everything() -> None:
    assert build_query() == BuildQuery(None, None, 50, None)


def test_every_parameter_is_checked_and_typed() -> None:
    query = build_query(
        repo="https://GitHub.com/Org/Repo.git", state="built", limit="7", cursor="a" * 32
    )
    assert query == BuildQuery("https://github.com/org/repo", BuildState.BUILT, 7, "a" * 32)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"state": "done"}, "state must be one of queued, running, built, failed, cancelled"),
        ({"limit": "0"}, f"limit must be a whole number from 1 to {MAX_PAGE}"),
        ({"limit": str(MAX_PAGE + 1)}, f"limit must be a whole number from 1 to {MAX_PAGE}"),
        ({"limit": "-1"}, f"limit must be a whole number from 1 to {MAX_PAGE}"),
        ({"cursor": "A" * 32}, "cursor is not a build id from a previous page"),
        ({"repo": "ftp://example.com/x"}, "repo URL scheme 'ftp' is not allowed"),
    ],
)
def test_a_bad_parameter_is_named(fields: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        build_query(**fields)  # type: ignore[arg-type]  # only the text fields
    assert str(refused.value).startswith(message)
