"""Gists (issue 25): the forms a gist is given in and what the intake reads them as, and
how git reaches gist.github.com through ``providers.proxy`` (jobs/sources/git_policy.py)
in the service and in both executors' builds. The builds themselves:
tests/integration/test_gist_builds.py."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from jobs import errors
from jobs.executors.kubernetes.pod import pod_mounts, record_env
from jobs.model import Build, BuildState
from jobs.naming import build_name_for, image_name_for
from jobs.settings import Settings
from jobs.sources.forms import parse_source
from jobs.sources.git_policy import provider_git_config, with_git_config
from jobs.sources.providers import GIT_SPEC_FORMS, repo_spec_for
from jobs.sources.records import GitSource
from jobs.sources.specs import RepoSpec, repo_spec

SHA = "0123456789abcdef0123456789abcdef01234567"
GIST = "8f7c2f0341ef4180b0dbe97f59130756"
URL = f"https://gist.github.com/{GIST}"
PROXY = "http://proxy.test:3128"


@pytest.mark.parametrize(
    ("text", "ref", "expected"),
    [
        # the clone URL a gist's page shows, with its owner or not
        (f"{URL}.git", None, RepoSpec(URL, "HEAD")),
        (f"https://gist.github.com/alice/{GIST}.git", None, RepoSpec(URL, "HEAD")),
        # a ref given apart (the API's ref, the CLI's --ref), as for any repository
        (URL, "main", RepoSpec(URL, "main")),
        (URL, "feature/x", RepoSpec(URL, "feature/x")),
        (f"https://gist.github.com/alice/{GIST}", SHA, RepoSpec(URL, SHA)),
        (f"https://gist.github.com/alice/{GIST}/{SHA}", SHA, RepoSpec(URL, SHA)),
        # an owner whose name looks like an old, numeric gist id
        (f"https://gist.github.com/1234/{GIST}", None, RepoSpec(URL, "HEAD")),
        (
            "https://gist.github.com/1234/5678",
            None,
            RepoSpec("https://gist.github.com/5678", "HEAD"),
        ),
        # an old, numeric gist at a commit
        (
            f"https://gist.github.com/5678/{SHA}",
            None,
            RepoSpec("https://gist.github.com/5678", SHA),
        ),
    ],
)
def test_gist_forms(text: str, ref: str | None, expected: RepoSpec) -> None:
    assert parse_source(text, ref=ref) == GitSource(expected)


@pytest.mark.parametrize(
    ("text", "ref", "message"),
    [
        (f"https://gist.github.com/alice/{GIST}/{SHA}", "main", "names revision"),
        (f"https://gist.github.com/alice/{GIST}/main", "master", "names revision"),
        (f"{URL}/raw", None, "a gist's revision is its 40-digit commit SHA"),
        ("https://gist.github.com/alice/not-a-gist.git", None, "a gist is"),
        (URL, "a..b", "must not contain '..'"),
    ],
)
def test_gist_refusals(text: str, ref: str | None, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        parse_source(text, ref=ref)


STREAM_SPECS = [
    ("gist", f"alice/{GIST}"),
    ("gist", f"alice/{GIST}/HEAD"),
    ("gist", f"alice/{GIST}/main"),
    ("gist", f"alice/{GIST}/{SHA}"),
    ("gist", f"1234/{GIST}/master"),
    ("gist", f"alice/{GIST}.git/main"),
    *[(provider, example.partition("/")[2]) for provider, (_, example) in GIT_SPEC_FORMS.items()],
]


@pytest.mark.parametrize(("provider", "spec"), STREAM_SPECS)
def test_a_stream_spec_is_read_back_by_the_intake_as_it_was_mapped(
    provider: str, spec: str
) -> None:
    """The stream (and the API's provider and spec) hand the intake the repository URL
    and ref they map a spec to (``repo_spec_for``); the intake reads them with
    ``parse_source``, which must take them as they are, not refuse them."""
    mapped = repo_spec_for(provider, spec)
    read = parse_source(mapped.url, ref=mapped.ref)
    assert read == GitSource(repo_spec(mapped.url, mapped.ref))  # its URL's spelling made one
    assert isinstance(read, GitSource)
    assert read.spec.ref == mapped.ref


def git_config_of(env: dict[str, str], url: str) -> str:
    """What real git takes as ``http.proxy`` for ``url`` under ``env``."""
    return subprocess.run(
        ["git", "config", "--get-urlmatch", "http.proxy", url],
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **env},
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def test_git_reaches_gists_and_only_gists_through_the_providers_proxy() -> None:
    assert provider_git_config(None) == []
    entries = provider_git_config(PROXY)
    assert entries == [("http.https://gist.github.com/.proxy", PROXY)]
    credentials = {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "http.https://github.com/org.extraHeader",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": "http.https://github.com/org.extraHeader",
        "GIT_CONFIG_VALUE_1": "Authorization: Basic x",
        "GIT_SSL_CAINFO": "/ca.pem",
    }
    env = with_git_config(credentials, entries)
    assert env == {
        **credentials,
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_2": "http.https://gist.github.com/.proxy",
        "GIT_CONFIG_VALUE_2": PROXY,
    }
    assert with_git_config(credentials, []) == credentials
    # real git reads it so: gists through the proxy, any other host not
    assert git_config_of(env, f"{URL}") == PROXY
    assert git_config_of(env, f"https://gist.github.com/alice/{GIST}.git") == PROXY
    assert git_config_of(env, "https://github.com/org/repo") == ""
    assert git_config_of(env, "https://gist.github.com.evil.example/x") == ""


def build_of(repo: str, provider: str = "git") -> Build:
    image = image_name_for("registry.example.org/binder-", repo, SHA)
    return Build(
        id="5f0c6a0e3b7c4d0f8e1a2b3c4d5e6f70",
        repo=repo,
        ref="HEAD",
        ref_kind="head",
        sha=SHA,
        image=image,
        name=build_name_for(image),
        state=BuildState.QUEUED,
        trigger="api",
        created_at=1764100000.25,
        provider=provider,
    )


def kubernetes(**values: Any) -> Settings:
    return Settings(executor="kubernetes", image_prefix="registry.example.org/binder-", **values)


def test_a_build_pod_clones_a_gist_through_the_providers_proxy() -> None:
    settings = kubernetes(providers={"proxy": PROXY})
    expected = [
        {"name": "GIT_CONFIG_COUNT", "value": "1"},
        {"name": "GIT_CONFIG_KEY_0", "value": "http.https://gist.github.com/.proxy"},
        {"name": "GIT_CONFIG_VALUE_0", "value": PROXY},
    ]
    assert record_env(build_of(URL), settings) == expected
    _, _, env = pod_mounts(build_of(URL), settings, "config")
    assert [
        e
        for e in env
        if e["name"].startswith(("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    ] == expected
    assert not [e for e in env if "PROXY" in e["name"]]  # no proxy for anything else
    # without providers.proxy, nothing
    assert record_env(build_of(URL), kubernetes()) == []
