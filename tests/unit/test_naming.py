"""Image and build names users see and depend on: pinned by golden values."""

from __future__ import annotations

import itertools
import re

import pytest

from jobs.errors import InvalidRequest
from jobs.naming import MAX_BUILD_NAME_LENGTH, build_name_for, image_name_for, repo_slug
from jobs.sources.urls import canonical_repo_url

SHA = "0123456789abcdef0123456789abcdef01234567"
REGISTRY_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


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
