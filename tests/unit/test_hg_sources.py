"""Mercurial sources (jobs/sources/hg.py): the forms users give, golden; what a build
of one records and hands repo2docker; how ``hg identify`` is run (its egress, its
environment). ``hg identify`` against a real ``hg serve`` is tested in
tests/integration/test_swh_hg_builds.py, and through a proxy to a TLS ``hg serve`` in
tests/integration/test_record_egress.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import errors
from jobs.coordinator.record_intake import asked_ref, check_record, record_target
from jobs.sources.forms import parse_source
from jobs.sources.hg import hg_version
from jobs.sources.hg_identify import HgEgress, egress_options, hg_invocation
from jobs.sources.patterns import canonical_pattern
from jobs.sources.records import (
    CONTENT_PROVIDER_CLASSES,
    REF_PROVIDERS,
    RecordSource,
    describe,
    record_content,
    record_keys,
)
from webhook.errors import status_for

NODE = "d3ed62c2cb10cf1d090615034ae191f2342386fa"


@pytest.mark.parametrize(
    ("given", "ref", "source"),
    [
        (
            "hg+https://hg.example.org/repo",
            None,
            RecordSource("hg", "hg.example.org", "https://hg.example.org/repo", "default"),
        ),
        (
            "hg+https://HG.example.org:443/group/repo@stable",
            None,
            RecordSource("hg", "hg.example.org", "https://hg.example.org/group/repo", "stable"),
        ),
        (
            f"hg+http://127.0.0.1:8000/r@{NODE}",
            None,
            RecordSource("hg", "127.0.0.1:8000", "http://127.0.0.1:8000/r", NODE),
        ),
        (
            "hg+https://hg.example.org/repo",
            "1.0",
            RecordSource("hg", "hg.example.org", "https://hg.example.org/repo", "1.0"),
        ),
        (
            "hg+https://hg.example.org/repo@1.0",
            "1.0",
            RecordSource("hg", "hg.example.org", "https://hg.example.org/repo", "1.0"),
        ),
    ],
)
def test_mercurial_forms_golden(given: str, ref: str | None, source: RecordSource) -> None:
    assert parse_source(given, ref=ref) == source


@pytest.mark.parametrize(
    ("given", "ref", "message"),
    [
        ("hg+ftp://hg.example.org/r", None, "scheme 'hg\\+ftp' is not allowed"),
        ("hg+https://", None, "is not a Mercurial URL"),
        ("hg+https://hg.example.org", None, "is not a Mercurial URL"),
        ("hg+https://user:pw@hg.example.org/r", None, "must hold no user name or password"),
        ("hg+https://hg.example.org/r?x=1", None, "is not a Mercurial URL"),
        ("hg+https://hg.example.org/r@-rf", None, "is not a Mercurial URL"),
        ("hg+https://hg.example.org/r@a(b)", None, "is not a Mercurial URL"),
        ("hg+https://hg.example.org/r", "--config=x", "is no Mercurial branch"),
        ("hg+https://hg.example.org/r@1.0", "2.0", "names its ref: give no other"),
    ],
)
def test_bad_mercurial_forms_are_400(given: str, ref: str | None, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=message) as raised:
        parse_source(given, ref=ref)
    assert "pw@" not in str(raised.value)


def test_a_mercurial_build_is_named_after_its_changeset_and_handed_it_as_its_ref() -> None:
    source = parse_source("hg+https://hg.example.org/repo@stable")
    assert isinstance(source, RecordSource)
    version = hg_version(source, NODE)
    assert version.moves  # a branch moves
    fixed = parse_source(f"hg+https://hg.example.org/repo@{NODE}")
    assert isinstance(fixed, RecordSource)
    assert not hg_version(fixed, NODE).moves
    target = record_target(version, asked_ref(source, version), "registry.example.org/p-")
    assert (target.page, target.ref, target.resolved.sha) == (
        "https://hg.example.org/repo",
        "stable",
        NODE,
    )
    assert target.image.startswith("registry.example.org/p-hg-hg-example-org-https-hg-")
    assert target.image.endswith(f":{NODE}")
    assert record_content("hg", target.page, NODE) == "https://hg.example.org/repo"
    assert "hg" in REF_PROVIDERS  # the executors hand repo2docker --ref <changeset>
    assert CONTENT_PROVIDER_CLASSES["hg"] == "repo2docker.contentproviders.Mercurial"
    assert describe(source) == "Mercurial repository https://hg.example.org/repo at stable"


def test_allowed_repos_reads_a_mercurial_repository_by_its_host_and_url() -> None:
    source = parse_source("hg+https://hg.example.org/team/repo")
    assert isinstance(source, RecordSource)
    assert record_keys(source) == (
        "hg:hg.example.org/team/repo",
        "https://hg.example.org/team/repo",
    )
    check_record(["hg:hg.example.org/team/*"], source)
    check_record(["https://hg.example.org/*"], source)
    with pytest.raises(errors.RepoNotAllowed, match=r"Mercurial repository .* is not in allowed"):
        check_record(["hg:hg.example.org/other/*", "zenodo:*"], source)


def test_an_hg_pattern_is_kept_as_written_when_the_settings_load() -> None:
    """Not read as an SCP-like git address (``ssh://hg/...``), which no record matches."""
    assert canonical_pattern("hg:hg.example.org/team/*") == "hg:hg.example.org/team/*"
    source = parse_source("hg+https://hg.example.org/team/repo")
    assert isinstance(source, RecordSource)
    check_record([canonical_pattern("hg:hg.example.org/team/*")], source)


CA = Path("/etc/binderhub-service/ca-bundle.crt")


@pytest.mark.parametrize(
    ("egress", "options", "env"),
    [
        (HgEgress(), [], {}),  # the environment's proxies, as hg reads them
        (
            HgEgress(proxy="http://proxy.internal:3128"),
            [
                *("--config", "http_proxy.host=http://proxy.internal:3128"),
            ],
            {},
        ),
        (HgEgress(cacerts=CA), ["--config", f"web.cacerts={CA}"], {}),
        (  # a password is never an argument: every user of the machine reads those
            HgEgress(proxy="http://svc:s3cret@proxy.internal:3128", cacerts=CA),
            ["--config", f"web.cacerts={CA}"],
            {"http_proxy": "http://svc:s3cret@proxy.internal:3128"},
        ),
    ],
)
def test_hg_gets_the_providers_proxy_and_ca_on_its_command_line(
    egress: HgEgress, options: list[str], env: dict[str, str]
) -> None:
    assert egress_options(egress) == (options, env)


def test_hg_refuses_an_https_proxy_rather_than_send_it_a_connect_in_the_clear() -> None:
    with pytest.raises(errors.HostNotHandled, match="https:// proxy") as refused:
        egress_options(HgEgress(proxy="https://svc:s3cret@proxy.internal:3128"))
    assert "s3cret" not in str(refused.value)
    assert status_for(refused.value) == 422


def test_hg_runs_without_configuration_and_with_one_proxy_only() -> None:
    service = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": "/home/service",
        "HGRCPATH": "/etc/mercurial/hgrc",
        "https_proxy": "http://env-proxy:3128",
        "no_proxy": "hg.example.org",
        "DATABASE_URL": "postgresql://secret@db/x",
    }
    fixed = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "HGPLAIN": "1", "HGRCPATH": ""}
    fixed["HOME"] = "/nonexistent"
    options, env = hg_invocation(service, HgEgress())
    assert (options, env) == (
        [],
        {**fixed, "https_proxy": "http://env-proxy:3128"} | {"no_proxy": "hg.example.org"},
    )
    options, env = hg_invocation(service, HgEgress(proxy="http://proxy.internal:3128"))
    assert env == fixed  # neither the environment's proxy nor its exceptions
    assert "http_proxy.host=http://proxy.internal:3128" in options
