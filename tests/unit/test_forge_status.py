"""Forge matching, commit statuses from build states, rate-limit errors, hook helpers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from jobs.errors import InvalidRequest, NotFound
from jobs.events import BuildEvent, EventHub
from jobs.forges.base import CommitStatus, HookChange
from jobs.forges.errors import rate_limit_error
from jobs.forges.github import default_api_url
from jobs.forges.hook_setup import check_project, hook_url, install_hook, pick_host
from jobs.forges.hosts import Forges
from jobs.forges.status import StatusReporter, build_page_url, status_for
from jobs.model import Build, BuildState
from jobs.settings import ForgeSettings, load_settings
from jobs.sources.specs import ResolvedRef

pytestmark = pytest.mark.anyio
SHA = "0123456789abcdef0123456789abcdef01234567"
IMAGE = f"registry.example.org/binder-github-com-org-repo-12345678:{SHA}"


def make_build(ref: str = "main", ref_kind: str = "branch", **changes: Any) -> Build:
    values: dict[str, Any] = {
        "id": "b" * 32,
        "repo": "https://github.com/org/repo",
        "ref": ref,
        "ref_kind": ref_kind,
        "sha": SHA,
        "image": IMAGE,
        "name": "r2d-org-repo",
        "state": BuildState.QUEUED,
        "trigger": "api",
        "created_at": 0.0,
    }
    values.update(changes)
    return Build(**values)


def forges(**settings: Any) -> Forges:
    return Forges.from_settings(ForgeSettings.model_validate(settings))


# -- which forge, which project ---------------------------------------------------


def test_repositories_are_matched_to_forges() -> None:
    configured = forges(
        hosts=[
            {"kind": "github", "url": "https://github.com", "token": "t"},
            {"kind": "gitlab", "url": "https://code.example.org/gitlab", "token": "t"},
            {"kind": "gitlab", "url": "https://gitlab.com"},
        ]
    )

    def project(url: str) -> tuple[str, str] | None:
        found = configured.match(url)
        return None if found is None else (found.host.url, found.project)

    assert project("https://github.com/org/repo") == ("https://github.com", "org/repo")
    assert project("ssh://git@github.com/org/repo") == ("https://github.com", "org/repo")
    assert project("git://github.com/org/repo") == ("https://github.com", "org/repo")
    assert project("https://github.com/org/repo/extra") is None  # not owner/repo
    assert project("https://github.com/org") is None
    assert project("https://code.example.org/gitlab/group/sub/project") == (
        "https://code.example.org/gitlab",
        "group/sub/project",
    )
    assert project("https://code.example.org/group/project") is None  # outside the prefix
    assert project("https://gitlab.com/group/project") == ("https://gitlab.com", "group/project")
    assert configured.match("https://gitlab.com/group/project").client is None  # type: ignore[union-attr]
    assert project("https://example.org/org/repo") is None
    assert project("file:///srv/repo") is None


def test_api_urls() -> None:
    assert default_api_url("https://github.com") == "https://api.github.com"
    assert default_api_url("https://github.example.org/") == "https://github.example.org/api/v3"


async def test_no_token_means_no_api() -> None:
    configured = forges(hosts=[{"kind": "github", "url": "https://github.com"}])
    assert await configured.resolve("https://github.com/org/repo", "main") is None
    assert not configured.reports_status


async def test_resolve_refs_off_means_git_answers() -> None:
    configured = forges(
        hosts=[{"kind": "github", "url": "https://github.com", "token": "t", "resolve_refs": False}]
    )
    assert await configured.resolve("https://github.com/org/repo", "main") is None
    assert configured.reports_status


# -- statuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "error", "expected_state", "description"),
    [
        ("queued", "", "pending", "waiting for a build slot"),
        ("running", "", "running", "building the image"),
        ("built", "", "success", f"image {IMAGE}"),
        (
            "failed",
            "repo2docker exited with code 1",
            "failure",
            "build failed: repo2docker exited with code 1",
        ),
        ("cancelled", "cancelled", "cancelled", "build cancelled"),
        ("superseded", "x", "cancelled", "superseded by a build of a newer commit"),
        (
            "superseded",
            "superseded by the deletion of refs/heads/main in github delivery 1",
            "cancelled",
            "superseded by the deletion of refs/heads/main in github delivery 1",
        ),
    ],
)
def test_status_for_each_state(
    state: str, error: str, expected_state: str, description: str
) -> None:
    status = status_for(
        make_build(), state, error, context="binder", public_url="https://hub.example.org/binder/"
    )
    assert status == CommitStatus(
        state=expected_state,  # type: ignore[arg-type]
        description=description,
        context="binder",
        target_url=f"https://hub.example.org/binder/#build={'b' * 32}",
        ref="main",
    )


def test_status_details() -> None:
    tag = status_for(make_build("refs/tags/v1", "tag"), "queued", "", context="c", public_url=None)
    assert tag is not None
    assert tag.ref == "v1"
    assert tag.target_url is None
    head = status_for(make_build("HEAD", "head"), "queued", "", context="c", public_url=None)
    assert head is not None
    assert head.ref is None
    assert status_for(make_build(), "exploded", "", context="c", public_url=None) is None
    assert build_page_url("https://x.org/svc", "1") == "https://x.org/svc/#build=1"
    long = CommitStatus("failure", "build failed: " + "x" * 300, "c")
    assert len(long.short_description()) == 140
    assert long.short_description().endswith("…")
    assert CommitStatus("failure", "two\n  lines", "c").short_description() == "two lines"


class RecordingClient:
    """Records statuses; ``gate`` holds the first send until released."""

    kind = "github"

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = fail

    def set_status(self, project: str, sha: str, status: CommitStatus) -> None:
        self.entered.set()
        self.gate.wait(30)
        if self.fail:
            from jobs.forges.errors import ForgeUnavailable

            raise ForgeUnavailable("GitHub answered 500: Internal Server Error")
        self.sent.append((project, sha, status.state))

    def resolve(self, project: str, ref: str) -> ResolvedRef | None:
        raise AssertionError("not used")

    def install_hook(self, project: str, url: str, secret: str) -> HookChange:
        raise AssertionError("not used")


def reporter_for(client: RecordingClient, build: Build) -> tuple[StatusReporter, EventHub]:
    configured = forges(hosts=[{"kind": "github", "url": "https://github.com", "token": "t"}])
    host = configured.match(build.repo).host  # type: ignore[union-attr]
    configured = Forges([(host, client)])

    def lookup(build_id: str) -> Build:
        if build_id != build.id:
            raise NotFound(build_id)
        return build

    hub = EventHub()
    reporter = StatusReporter(configured, lookup, context="binder", public_url=None)
    hub.add_listener(reporter.on_event)
    return reporter, hub


def state_event(build: Build, state: str) -> BuildEvent:
    return BuildEvent(build.id, "state", "", "", state=state)


async def test_statuses_are_sent_in_order_and_overtaken_ones_skipped() -> None:
    build = make_build()
    client = RecordingClient()
    reporter, hub = reporter_for(client, build)
    hub.publish(state_event(build, "queued"))
    await asyncio.to_thread(client.entered.wait, 30)  # the first send is in flight
    hub.publish(BuildEvent(build.id, "log", "", "a line"))
    hub.publish(state_event(build, "running"))
    hub.publish(state_event(build, "built"))
    hub.publish(state_event(make_build(id="c" * 32), "queued"))  # a build lookup cannot find
    client.gate.set()
    await reporter.drain()
    assert client.sent == [("org/repo", SHA, "pending"), ("org/repo", SHA, "success")]


async def test_a_record_s_build_gets_no_commit_status() -> None:
    """A record's page may be on a host a forge is configured for: its version is no
    commit there, so nothing is sent."""
    build = make_build(provider="zenodo", sha="3242081", ref_kind="other")
    client = RecordingClient()
    client.gate.set()
    reporter, hub = reporter_for(client, build)
    hub.publish(state_event(build, "queued"))
    hub.publish(state_event(build, "built"))
    await reporter.drain()
    assert client.sent == []
    assert not client.entered.is_set()


async def test_a_failing_forge_is_counted_and_nothing_raises() -> None:
    from prometheus_client import REGISTRY

    def failed() -> float:
        value = REGISTRY.get_sample_value(
            "binderhub_service_forge_statuses_total", {"forge": "github", "result": "failed"}
        )
        return value or 0.0

    build = make_build()
    client = RecordingClient(fail=True)
    client.gate.set()
    reporter, hub = reporter_for(client, build)
    before = failed()
    hub.publish(state_event(build, "queued"))
    await reporter.drain()
    hub.publish(state_event(build, "failed"))
    await reporter.drain()
    assert failed() == before + 2
    assert client.sent == []


async def test_drain_gives_up_after_its_bound_and_counts_what_it_dropped() -> None:
    from prometheus_client import REGISTRY

    def dropped() -> float:
        value = REGISTRY.get_sample_value(
            "binderhub_service_forge_statuses_total", {"forge": "github", "result": "dropped"}
        )
        return value or 0.0

    build = make_build()
    client = RecordingClient()
    reporter, hub = reporter_for(client, build)
    before = dropped()
    assert await reporter.drain(0.01) == 0  # nothing to send: nothing dropped
    hub.publish(state_event(build, "queued"))
    await asyncio.to_thread(client.entered.wait, 30)  # the forge holds the first status
    hub.publish(state_event(build, "built"))
    try:
        assert await reporter.drain(0.1) == 1
    finally:
        client.gate.set()
    assert dropped() == before + 1
    assert await reporter.drain(None) == 0  # the worker was stopped: nothing is left
    assert ("org/repo", SHA, "success") not in client.sent


# -- rate limits --------------------------------------------------------------------


def test_rate_limit_errors() -> None:
    now = 1_800_000_000.0
    primary = rate_limit_error(
        "GitHub",
        403,
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) + 90)},
        now,
    )
    assert primary is not None
    assert primary.retry_after == 90
    assert "retry after 2027-01-15 08:01:30 UTC (in 90 s)" in str(primary)
    secondary = rate_limit_error("GitHub", 403, {"retry-after": "60"}, now)
    assert secondary is not None
    assert secondary.retry_after == 60
    gitlab = rate_limit_error("GitLab", 429, {"RateLimit-Reset": str(int(now) + 5)}, now)
    assert gitlab is not None
    assert gitlab.retry_after == 5
    assert rate_limit_error("GitHub", 403, {"x-ratelimit-remaining": "12"}, now) is None
    assert rate_limit_error("GitHub", 404, {"retry-after": "60"}, now) is None
    late = rate_limit_error("GitHub", 403, {"retry-after": "-5"}, now)
    assert late is not None
    assert late.retry_after == 1


# -- webhook setup --------------------------------------------------------------------


def test_hook_helpers() -> None:
    assert hook_url("https://hub.example.org/binder/", "github") == (
        "https://hub.example.org/binder/hooks/github"
    )
    assert hook_url("https://hub.example.org/binder", "gitlab") == (
        "https://hub.example.org/binder/hooks/gitlab"
    )
    assert check_project("github", "/org/repo/") == "org/repo"
    assert check_project("gitlab", "group/sub/project") == "group/sub/project"


@pytest.mark.parametrize(
    ("kind", "project", "problem"),
    [
        ("github", "org", "OWNER/REPO"),
        ("github", "org/repo/x", "OWNER/REPO"),
        ("gitlab", "project", "NAMESPACE/PROJECT"),
        ("github", "org//repo", "not a repository path"),
        ("github", "org/../repo", "not a repository path"),
        ("gitlab", "a b/c", "not a repository path"),
    ],
)
def test_bad_projects_are_refused(kind: Any, project: str, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        check_project(kind, project)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({}, "public_url is not set"),
        ({"public_url": "https://hub.example.org/"}, "webhooks.github_secret is not set"),
        (
            {"public_url": "https://hub.example.org/", "webhooks": {"github_secret": "s"}},
            "no github forge with a token",
        ),
        (
            {
                "public_url": "https://hub.example.org/",
                "webhooks": {"github_secret": "s"},
                "forges": {"hosts": [{"kind": "github", "url": "https://github.com"}]},
            },
            "no github forge with a token",
        ),
    ],
)
def test_hook_install_needs_its_settings(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        install_hook(load_settings(None, **settings), "github", "org/repo")


def test_a_forge_is_picked_by_url_when_there_are_several() -> None:
    settings = load_settings(
        None,
        forges={
            "hosts": [
                {"kind": "gitlab", "url": "https://gitlab.com", "token": "a"},
                {"kind": "gitlab", "url": "https://gitlab.example.org", "token": "b"},
            ]
        },
    )
    with pytest.raises(InvalidRequest, match="several gitlab forges"):
        pick_host(settings, "gitlab", None)
    assert pick_host(settings, "gitlab", "https://gitlab.example.org/").url == (
        "https://gitlab.example.org"
    )
    with pytest.raises(InvalidRequest, match=r"no gitlab forge at https://x\.org"):
        pick_host(settings, "gitlab", "https://x.org")
