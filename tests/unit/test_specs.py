"""Names users see and depend on: pinned by golden values."""

from __future__ import annotations

import itertools
import re

import pytest

from jobs.errors import InvalidRequest
from jobs.sources.specs import (
    MAX_BUILD_NAME_LENGTH,
    RepoSpec,
    build_name_for,
    canonical_repo_url,
    check_ref,
    image_name_for,
    parse_shortcut,
    repo_slug,
    repo_spec,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
REGISTRY_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


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


def test_golden_image_and_build_names() -> None:
    url = canonical_repo_url("https://github.com/jupyterhub/binderhub")
    image = image_name_for("registry.example.org/binder-", url, SHA)
    assert image == ("registry.example.org/binder-github-com-jupyterhub-binderhub-2099805d:" + SHA)
    assert (
        build_name_for(image) == "r2d-binder-github-com-jupyterhub-binderhub-0123456-56ec3455dc79"
    )
    local = image_name_for("127.0.0.1:5000/", "git://127.0.0.1:9418/demo", SHA)
    assert local == "127.0.0.1:5000/127-0-0-1-demo-90019f0f:" + SHA


def test_one_repo_one_image_whatever_the_case() -> None:
    names = {
        image_name_for("r.example/", canonical_repo_url(given), SHA)
        for given in (
            "https://github.com/Owner/Repo",
            "https://github.com/owner/repo.git",
            "https://GITHUB.com/OWNER/REPO/",
        )
    }
    assert len(names) == 1


def test_slugs_are_registry_safe_and_distinct_for_lookalikes() -> None:
    lookalikes = [
        "https://git.example.org/a/b-c",
        "https://git.example.org/a-b/c",
        "https://git.example.org/A/b-c",
        "https://git.example.org/a/b_c",
        "https://git.example.org/a/b.c",
        "https://git.example.org/" + "x" * 300 + "/1",
        "https://git.example.org/" + "x" * 300 + "/2",
        "https://git.example.org/%E2%98%83/snow",
        "https://git.example.org/---/___",
    ]
    slugs = [repo_slug(url) for url in lookalikes]
    assert len(set(slugs)) == len(slugs)
    for slug in slugs:
        assert REGISTRY_COMPONENT.match(slug), slug
        assert len(slug) <= 96


def test_image_names_stay_within_registry_limits() -> None:
    prefix = "registry.example.org/" + "p" * 200 + "/"
    image = image_name_for(prefix, "https://git.example.org/" + "x" * 500, SHA)
    name, _, tag = image.rpartition(":")
    assert len(name) <= 255
    assert tag == SHA
    with pytest.raises(InvalidRequest, match="too long"):
        image_name_for("r.example/" + "p" * 250, "https://git.example.org/a", SHA)
    with pytest.raises(InvalidRequest, match="full 40-character"):
        image_name_for("r.example/", "https://git.example.org/a", "abc")


def test_build_names_are_dns_labels_and_never_collide() -> None:
    repos = ["https://git.example.org/" + "x" * n for n in (1, 50, 200)] + [
        "https://github.com/a/b",
        "https://github.com/a/b-",
    ]
    shas = [f"{i:040x}" for i in range(30)] + ["f" * 40, "e" * 40]
    names = set()
    for repo, sha in itertools.product(repos, shas):
        name = build_name_for(image_name_for("r.example/binder-", repo, sha))
        assert len(name) <= MAX_BUILD_NAME_LENGTH
        assert DNS_LABEL.match(name), name
        names.add(name)
    assert len(names) == len(repos) * len(shas)
