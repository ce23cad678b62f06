"""Git credentials: URL prefix matching, the winner, and what git is handed."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from jobs.forges.credentials import Credential, CredentialSet, credential_set
from jobs.settings import ConfigError, ForgeSettings, load_settings
from jobs.sources.patterns import UrlPattern


def cred(url: str, password: str, username: str = "x-access-token") -> Credential:
    return Credential(UrlPattern.parse(url), username, password)


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("https://github.com", "https://github.com/org/repo", True),
        ("https://github.com/org", "https://github.com/org/repo", True),
        ("https://github.com/org", "https://github.com/org", True),
        ("https://github.com/org", "https://github.com/organ/repo", False),
        ("https://github.com/org/", "https://github.com/org/repo", True),
        ("https://github.com", "http://github.com/org/repo", False),
        ("https://github.com", "ssh://git@github.com/org/repo", False),
        ("https://github.com", "https://github.com:443/org/repo", True),
        ("https://git.example.org:8443", "https://git.example.org/a/b", False),
        ("https://*.example.org", "https://git.example.org/a/b", True),
        ("https://*.example.org", "https://example.org/a/b", False),
        ("https://*.example.org", "https://a.git.example.org/a/b", False),
        ("https://GitHub.com", "https://github.com/org/repo", True),
    ],
)
def test_prefix_matching(pattern: str, url: str, matches: bool) -> None:
    assert UrlPattern.parse(pattern).matches(url) is matches


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("ssh://git@github.com", "http:// or https://"),
        ("github.com/org", "http:// or https://"),
        ("https://user:pw@github.com", "must not carry credentials"),
        ("https://github.com/org?x=1", "query or fragment"),
        ("https://", "has no host"),
        ("https://git*.example.org", "whole host name label"),
        ("https://github.com/a/../b", "'..'"),
        ("https://github.com:99999", "invalid port"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        UrlPattern.parse(pattern)


def test_the_most_specific_credential_wins_in_any_order() -> None:
    host = cred("https://github.com", "host-token")
    org = cred("https://github.com/org", "org-token")
    repo = cred("https://github.com/org/repo", "repo-token")
    for order in ([host, org, repo], [repo, org, host], [org, repo, host]):
        credentials = CredentialSet(order)
        assert credentials.best("https://github.com/org/repo").password == "repo-token"  # type: ignore[union-attr]
        assert credentials.best("https://github.com/org/other").password == "org-token"  # type: ignore[union-attr]
        assert credentials.best("https://github.com/else/x").password == "host-token"  # type: ignore[union-attr]
        assert credentials.best("https://gitlab.com/org/repo") is None


def test_an_exact_host_beats_a_wildcard() -> None:
    credentials = CredentialSet(
        [cred("https://git.example.org", "exact"), cred("https://*.example.org", "wild")]
    )
    assert credentials.best("https://git.example.org/a/b").password == "exact"  # type: ignore[union-attr]
    assert credentials.best("https://other.example.org/a/b").password == "wild"  # type: ignore[union-attr]


def test_git_environment_clears_then_sets_each_header() -> None:
    env = CredentialSet(
        [cred("https://github.com/org", "org-token"), cred("https://github.com", "host-token")]
    ).git_environment()
    host_header = "Authorization: Basic " + base64.b64encode(b"x-access-token:host-token").decode()
    org_header = "Authorization: Basic " + base64.b64encode(b"x-access-token:org-token").decode()
    assert env == {
        "GIT_CONFIG_COUNT": "4",
        "GIT_CONFIG_KEY_0": "http.https://github.com.extraHeader",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": "http.https://github.com.extraHeader",
        "GIT_CONFIG_VALUE_1": host_header,
        "GIT_CONFIG_KEY_2": "http.https://github.com/org.extraHeader",
        "GIT_CONFIG_VALUE_2": "",
        "GIT_CONFIG_KEY_3": "http.https://github.com/org.extraHeader",
        "GIT_CONFIG_VALUE_3": org_header,
    }
    assert CredentialSet().git_environment() == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo",
        "https://github.com/org/other",
        "https://github.com/organ/repo",
        "https://git.example.org/a/b",
        "https://other.example.org/a/b",
        "https://example.org:8443/team/repo",
    ],
)
def test_git_picks_the_same_credential(url: str) -> None:
    """Real git reads the environment and names the header it would send."""
    credentials = CredentialSet(
        [
            cred("https://github.com", "host"),
            cred("https://github.com/org", "org"),
            cred("https://github.com/org/repo", "repo"),
            cred("https://*.example.org", "wild"),
            cred("https://git.example.org", "exact"),
            cred("https://example.org:8443/team", "team"),
        ]
    )
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        ["git", "config", "--get-urlmatch", "http.extraheader", url],
        env={**env, **credentials.git_environment()},
        capture_output=True,
        text=True,
        check=False,
    )
    best = credentials.best(url)
    assert best is not None
    assert result.stdout.strip() == f"Authorization: {best.authorization}"


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://github.com/org/repo", True),
        ("https://github.com/org/sub/module", True),  # a submodule under the same prefix
        ("https://github.com/organ/repo", False),
        ("https://evil.example/org/repo", False),  # a submodule or redirect elsewhere
        ("http://github.com/org/repo", False),
    ],
)
def test_a_builds_git_config_file_sends_its_header_under_its_prefix_only(
    tmp_path: Path, url: str, sent: bool
) -> None:
    """What a build gets (issue 20): real git reads the file as ``GIT_CONFIG_GLOBAL``."""
    credential = cred("https://github.com/org", 'pa"ss')
    config = tmp_path / "config"
    config.write_text(credential.git_config())
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        ["git", "config", "--get-urlmatch", "http.extraheader", url],
        env={**env, "GIT_CONFIG_GLOBAL": str(config)},
        capture_output=True,
        text=True,
        check=False,
    )
    expected = f"Authorization: {credential.authorization}" if sent else ""
    assert result.stdout.strip() == expected


def test_a_git_config_file_quotes_its_prefix() -> None:
    credential = Credential(UrlPattern("https", "h.example", 443, '/a"b\\c'), "u", "p")
    assert credential.git_config().splitlines()[0] == '[http "https://h.example/a\\"b\\\\c"]'


def test_credential_set_from_settings_includes_forge_tokens() -> None:
    settings = ForgeSettings.model_validate(
        {
            "hosts": [
                {"kind": "github", "url": "https://github.com", "token": "gh-token"},
                {"kind": "gitlab", "url": "https://gitlab.example.org/", "token": "gl-token"},
                {"kind": "gitlab", "url": "https://gitlab.com"},
            ],
            "credentials": [
                {"url": "https://github.com/org", "password": "org-token"},
                {"url": "https://git.example.org", "username": "bot", "password": "pw"},
            ],
        }
    )
    credentials = credential_set(settings)
    found = {
        url: (c.username, c.password) if (c := credentials.best(url)) else None
        for url in (
            "https://github.com/org/repo",
            "https://github.com/else/repo",
            "https://gitlab.example.org/group/project",
            "https://gitlab.com/group/project",
            "https://git.example.org/a/b",
        )
    }
    assert found == {
        "https://github.com/org/repo": ("x-access-token", "org-token"),
        "https://github.com/else/repo": ("x-access-token", "gh-token"),
        "https://gitlab.example.org/group/project": ("oauth2", "gl-token"),
        "https://gitlab.com/group/project": None,
        "https://git.example.org/a/b": ("bot", "pw"),
    }


def test_secrets_stay_out_of_reprs() -> None:
    settings = load_settings(
        None,
        forges={
            "hosts": [{"kind": "github", "url": "https://github.com", "token": "gh-secret"}],
            "credentials": [{"url": "https://github.com/org", "password": "org-secret"}],
        },
    )
    credentials = credential_set(settings.forges)
    for text in (repr(settings), str(settings.forges), repr(credentials)):
        assert "gh-secret" not in text
        assert "org-secret" not in text
    assert "org-secret" not in repr(credentials.best("https://github.com/org/x"))


@pytest.mark.parametrize(
    ("forges", "problem"),
    [
        (
            {"credentials": [{"url": "ssh://github.com", "password": "x"}]},
            "forges.credentials.0.url",
        ),
        ({"credentials": [{"url": "https://github.com"}]}, "forges.credentials.0.password"),
        ({"hosts": [{"kind": "gitea", "url": "https://x.org"}]}, "forges.hosts.0.kind"),
        ({"hosts": [{"kind": "github", "url": "github.com"}]}, "forges.hosts.0.url"),
        (
            {"hosts": [{"kind": "github", "url": "https://x.org", "api_url": "ftp://x.org"}]},
            "forges.hosts.0.api_url",
        ),
        ({"hosts": [{"kind": "github", "url": "https://t:x@x.org"}]}, "forges.hosts.0.url"),
        ({"status_context": ""}, "forges.status_context"),
        ({"hosts": [{"kind": "github", "url": "https://x.org", "tokn": "x"}]}, "unknown setting"),
    ],
)
def test_bad_forge_settings_name_the_key(forges: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        load_settings(None, forges=forges)
