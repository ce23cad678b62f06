"""The ``mirrors`` setting (issue 23): which URL a repository is fetched from, how a
mirror is spelled and refused, and the forge whose API it is asked of. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.forges.hosts import Forges
from jobs.settings import ConfigError, ForgeSettings, Settings, load_settings
from jobs.sources.mirrors import Mirror, check_mirror_url, fetch_url

GITHUB = Mirror("https://github.com", "https://ghe.example.org/mirrors/github")
ORG = Mirror("https://github.com/my-org", "git://cache.internal/my-org")


@pytest.mark.parametrize(
    ("repo", "fetched"),
    [
        ("https://github.com/x/y", "https://ghe.example.org/mirrors/github/x/y"),
        # the longest prefix wins, whatever the order
        ("https://github.com/my-org/course", "git://cache.internal/my-org/course"),
        # whole path segments only
        ("https://github.com/my-organisation/r", "https://ghe.example.org/mirrors/github/my-organisation/r"),
        ("https://gitlab.com/x/y", "https://gitlab.com/x/y"),
        ("https://github.company.org/x/y", "https://github.company.org/x/y"),
    ],
)  # fmt: skip
def test_the_longest_prefix_of_whole_segments_is_rewritten(repo: str, fetched: str) -> None:
    assert fetch_url(repo, [GITHUB, ORG]) == fetched
    assert fetch_url(repo, [ORG, GITHUB]) == fetched
    assert fetch_url(repo, []) == repo


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("github.com/x", "scheme"),
        ("ftp://mirror/x", "scheme"),
        ("https:///x", "host"),
        ("https://user:pw@mirror/x", "password"),
        ("https://mirror/x?token=1", "query"),
        ("https://bot@mirror/x", "user name"),
        ("https://mirror:port/x", "port"),
    ],
)
def test_a_mirror_that_does_not_parse_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_mirror_url(url, what="url")


def test_the_settings_spell_prefixes_as_repositories_and_name_a_bad_mirror(
    tmp_path: Path,
) -> None:
    settings = Settings.model_validate(
        {"mirrors": [{"prefix": "HTTPS://GitHub.com:443/", "url": "git://cache.internal/gh/"}]}
    )
    assert settings.mirrors[0].prefix == "https://github.com"
    assert settings.mirrors[0].url == "git://cache.internal/gh"
    assert settings.fetch_url("https://github.com/a/b") == "git://cache.internal/gh/a/b"
    assert settings.fetch_url("https://gitlab.com/a/b") == "https://gitlab.com/a/b"
    config = tmp_path / "config.yaml"
    config.write_text("mirrors:\n  - prefix: https://github.com\n    url: cache.internal/gh\n")
    with pytest.raises(ConfigError, match=r"mirrors\.0\.url"):
        load_settings(config)
    config.write_text("mirrors:\n  - prefix: https://github.com/../x\n    url: git://c/gh\n")
    with pytest.raises(ConfigError, match=r"mirrors\.0\.prefix"):
        load_settings(config)


def test_the_forge_of_a_mirrored_repository_is_the_mirrors() -> None:
    forges = ForgeSettings.model_validate(
        {
            "hosts": [
                {"kind": "github", "url": "https://github.com", "token": "t1"},
                {"kind": "github", "url": "https://ghe.example.org", "token": "t2"},
            ]
        }
    )
    plain = Forges.from_settings(forges)
    found = plain.match("https://github.com/x/y")
    assert found is not None
    assert found.host.url == "https://github.com"
    mirrored = Forges.from_settings(forges, fetch=lambda url: fetch_url(url, [GITHUB]))
    found = mirrored.match("https://github.com/x/y")
    # the mirror's host is a GitHub Enterprise of the settings, but its path has a prefix
    # (mirrors/github) that makes x/y no owner/repo there: no forge, git is asked
    assert found is None
    enterprise = Mirror("https://github.com", "https://ghe.example.org")
    routed = Forges.from_settings(forges, fetch=lambda url: fetch_url(url, [enterprise]))
    found = routed.match("https://github.com/x/y")
    assert found is not None
    assert found.host.url == "https://ghe.example.org"
    assert found.project == "x/y"
    air_gapped = Forges.from_settings(forges, fetch=lambda url: fetch_url(url, [ORG]))
    assert air_gapped.match("https://github.com/my-org/course") is None
