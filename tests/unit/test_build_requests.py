"""``build_query``: the text of a builds listing's query parameters to a typed query;
``body_request``: a build request's body (``repo`` or ``provider`` and ``spec``) to what
it asks for."""

from __future__ import annotations

import pytest

from jobs.coordinator.build_requests import MAX_PAGE, BuildQuery, body_request, build_query
from jobs.errors import InvalidRequest, NotFound, UnknownProvider
from jobs.model import BuildState
from jobs.sources.providers import PROVIDERS, stream_request


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


@pytest.mark.parametrize(
    ("body", "asked"),
    [
        ({"repo": "https://github.com/o/r"}, ("https://github.com/o/r", None)),
        ({"repo": "https://github.com/o/r", "ref": "v1"}, ("https://github.com/o/r", "v1")),
        ({"repo": "10.5281/zenodo.3242074"}, ("10.5281/zenodo.3242074", None)),
        (
            {"provider": "zenodo", "spec": "10.5281/zenodo.3242074"},
            ("10.5281/zenodo.3242074", None),
        ),
        (
            {"provider": "zenodo", "spec": "https%3A%2F%2Fzenodo.org%2Frecords%2F3242074"},
            ("https://zenodo.org/records/3242074", None),
        ),
        (
            {"provider": "figshare", "spec": "10.6084/m9.figshare.9782777.v1"},
            ("10.6084/m9.figshare.9782777.v1", None),
        ),
        ({"provider": "gh", "spec": "org/repo/main"}, ("https://github.com/org/repo", "main")),
        (
            {"provider": "gh", "spec": "org/repo/feature%2Fx"},
            ("https://github.com/org/repo", "feature/x"),
        ),
        ({"provider": "gl", "spec": "g%2Fp/v1"}, ("https://gitlab.com/g/p", "v1")),
        (
            {"provider": "git", "spec": "https%3A%2F%2Fgit.example.org%2Fr.git/main"},
            ("https://git.example.org/r.git", "main"),
        ),
        (
            {"provider": "gist", "spec": "u/0123456789abcdef0123"},
            ("https://gist.github.com/0123456789abcdef0123", "HEAD"),
        ),
    ],
)
def test_a_body_asks_what_the_stream_s_path_would(
    body: dict[str, str], asked: tuple[str, str | None]
) -> None:
    assert body_request(**body) == asked
    if "provider" in body:  # one mapping for the body and the stream
        assert stream_request(body["provider"], body["spec"]) == asked


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"repo": "https://github.com/o/r", "provider": "gh", "spec": "o/r/main"},
            "give either repo (with ref) or provider and spec, not both",
        ),
        (
            {"repo": "https://github.com/o/r", "provider": "gh"},
            "give either repo (with ref) or provider and spec, not both",
        ),
        ({"provider": "gh", "spec": "o/r/main", "ref": "main"}, "give no ref with provider"),
        ({"provider": "zenodo"}, "missing field: spec (provider 'zenodo' is given)"),
        ({"spec": "10.5281/zenodo.3242074"}, "missing field: provider (spec is given)"),
        ({}, "missing field: repo (or provider and spec)"),
        ({"ref": "main"}, "missing field: repo"),
        ({"provider": "gh", "spec": "org-only"}, "a gh spec is gh/<owner>/<repo>/<ref>"),
        ({"provider": "zenodo", "spec": "10.5281/"}, "a zenodo spec is zenodo/<DOI or record URL>"),
        (
            {"provider": "figshare", "spec": "10.5281/zenodo.1"},
            "a figshare spec is figshare/<DOI or record URL>",
        ),
        ({"provider": "gist", "spec": "only-a-user"}, "a gist spec is gist/<user>/<id>"),
    ],
)
def test_a_bad_body_is_named(body: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        body_request(**body)
    assert str(refused.value).startswith(message)


def test_an_unknown_provider_names_the_providers_offered() -> None:
    with pytest.raises(UnknownProvider) as refused:
        body_request(provider="nope", spec="a/b/c")
    assert str(refused.value) == (
        f"no provider 'nope': this service builds from {', '.join(PROVIDERS)}"
    )
    assert isinstance(refused.value, NotFound)  # 404
