"""Repository specs and refs: what is accepted, what is refused and why."""

from __future__ import annotations

import re

import pytest

from jobs.errors import InvalidRequest
from jobs.sources.specs import RepoSpec, check_ref, parse_shortcut, repo_spec
from jobs.sources.urls import canonical_repo_url

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("https://github.com/jupyterhub/binderhub", "https://github.com/jupyterhub/binderhub"),
        ("https://GitHub.com/JupyterHub/BinderHub.git/", "https://github.com/jupyterhub/binderhub"),
        ("https://gitlab.com/Group/Sub/Project", "https://gitlab.com/group/sub/project"),
        ("https://git.example.org/Team/Repo", "https://git.example.org/Team/Repo"),
        ("git://127.0.0.1:9418/demo", "git://127.0.0.1/demo"),
        ("git://127.0.0.1:9419/demo", "git://127.0.0.1:9419/demo"),
        ("git@github.com:Owner/Repo.git", "ssh://git@github.com/owner/repo"),
        ("ssh://git@host.example:2222/a/b", "ssh://git@host.example:2222/a/b"),
        ("HTTPS://Example.org:8443/x", "https://example.org:8443/x"),
    ],
)
def test_canonical_repo_url(given: str, canonical: str) -> None:
    assert canonical_repo_url(given) == canonical


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "non-empty"),
        ("file:///etc", "file:// repository URLs are not allowed"),
        ("ftp://example.org/repo", "scheme 'ftp' is not allowed"),
        ("https://user:secret@github.com/a/b", "must not carry credentials"),
        ("https://token@github.com/a/b", "must not carry credentials"),
        ("https://github.com/a/b c", "spaces or control characters"),
        ("https://github.com/a/\x00b", "spaces or control characters"),
        ("-uhttps://github.com/a/b", "must not start with '-'"),
        ("https://github.com/", "has no path"),
        ("https://github.com/a/../b", "must not contain '..'"),
        ("https://github.com/a/b?x=1", "query or fragment"),
        ("https://" + "a" * 2100, "longer than 2048"),
        ("not a url", "spaces"),
        ("just-a-word", "must be a URL"),
    ],
)
def test_bad_repo_urls_are_refused_with_a_reason(given: str, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(problem)):
        canonical_repo_url(given)


def test_file_urls_only_when_allowed() -> None:
    assert canonical_repo_url("file:///srv/repos/x/", allow_file=True) == "file:///srv/repos/x"
    with pytest.raises(InvalidRequest):
        canonical_repo_url("file://relative/x", allow_file=True)


@pytest.mark.parametrize("ref", ["main", "v1.0", "feature/x", "HEAD", SHA, "refs/heads/main"])
def test_good_refs(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "-x",
        "--upload-pack=evil",
        "a b",
        "a..b",
        "a~1",
        "a^",
        "a:b",
        "x.lock",
        "a/",
        "/a",
        "a//b",
        "a@{1}",
        "a\nb",
        "x" * 256,
        "*",
        "a[b",
    ],
)
def test_bad_refs(ref: str) -> None:
    with pytest.raises(InvalidRequest):
        check_ref(ref)


def test_shortcuts() -> None:
    assert parse_shortcut("gh/jupyterhub/binderhub/main") == RepoSpec(
        "https://github.com/jupyterhub/binderhub", "main"
    )
    assert parse_shortcut("gl/group/sub/project/feature%2Fx") == RepoSpec(
        "https://gitlab.com/group/sub/project", "feature/x"
    )
    assert repo_spec("gh/JupyterHub/BinderHub/v1", None) == RepoSpec(
        "https://github.com/jupyterhub/binderhub", "v1"
    )
    assert repo_spec("https://github.com/a/b", None).ref == "HEAD"
    for bad in ("gh/only-owner/main", "gh/a/b/c/d", "gl/project/", "bb/a/b/c"):
        with pytest.raises(InvalidRequest):
            repo_spec(bad, None)
    with pytest.raises(InvalidRequest, match="not both"):
        repo_spec("gh/a/b/main", "other")
