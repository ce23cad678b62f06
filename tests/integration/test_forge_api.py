"""Forge APIs through PyGithub and python-gitlab, pointed at local stand-ins as at GitHub
Enterprise and self-managed GitLab: ref resolution (with ETags, fallbacks and rate
limits), ``hooks install``, and private repositories on a real git HTTP server."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from jobs.errors import ForgeRateLimited, RefNotFound, RepoNotReadable
from jobs.forges.hosts import Forges
from jobs.settings import ForgeSettings, Settings
from jobs.sources.refs import RefResolver
from jobs.sources.specs import ResolvedRef
from testkit.components import GitRepo, GitServer, ServiceProcess, dockerfile, git

from .forge_standins import (
    FORGE_TOKEN,
    ForgeRepo,
    GitHubStandIn,
    GitLabStandIn,
    Recorded,
    basic,
    start_http_git_server,
)

pytestmark = pytest.mark.anyio
TOKEN = FORGE_TOKEN
SHA_MEDIA = "application/vnd.github.sha"
ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "binderhub-service")


def forge_repo(repo: GitRepo) -> ForgeRepo:
    """What a forge would know of ``repo``: its branches and (peeled) tags."""
    listed = git("for-each-ref", "--format=%(refname) %(*objectname) %(objectname)", cwd=repo.path)
    known = ForgeRepo()
    for line in listed.splitlines():
        name, *shas = line.split()
        sha = shas[0]  # the peeled commit of an annotated tag, else the object itself
        if name.startswith("refs/heads/"):
            known.branches[name[11:]] = sha
        elif name.startswith("refs/tags/"):
            known.tags[name[10:]] = sha
    return known


def make_repo(git_server: GitServer, name: str) -> tuple[GitRepo, dict[str, str]]:
    repo = git_server.create_repo(name, {"Dockerfile": dockerfile()})
    main = git("rev-parse", "HEAD", cwd=repo.path)
    repo.tag("v1", annotated=True)
    feature = repo.commit({"x": "1"}, branch="feature/x")
    git("checkout", "-q", "main", cwd=repo.path)
    return repo, {"main": main, "feature/x": feature}


def counted(name: str, forge: str, result: str) -> float:
    value = REGISTRY.get_sample_value(name, {"forge": forge, "result": result})
    return value or 0.0


def requests_made(standin: GitHubStandIn | GitLabStandIn) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in standin.requests]


def github_settings(standin: GitHubStandIn, **host: Any) -> dict[str, Any]:
    return {
        "hosts": [
            {
                "kind": "github",
                "url": "http://127.0.0.1",
                "api_url": standin.api_url,
                "token": TOKEN,
                **host,
            }
        ]
    }


def gitlab_settings(standin: GitLabStandIn, **host: Any) -> dict[str, Any]:
    return {
        "hosts": [
            {"kind": "gitlab", "url": "http://127.0.0.1", "api_url": standin.url, "token": TOKEN}
            | host
        ]
    }


def resolver_for(forge_settings: dict[str, Any]) -> RefResolver:
    forges = Forges.from_settings(ForgeSettings.model_validate(forge_settings))
    return RefResolver(timeout=20, ttl=0, forge=forges, git_env=forges.git_environment())


# -- GitHub -----------------------------------------------------------------------


async def test_github_resolves_branches_tags_and_short_shas_with_etags(
    git_server: GitServer, github: GitHubStandIn, unique: str
) -> None:
    repo, shas = make_repo(git_server, f"org-{unique}/repo")
    project = f"org-{unique}/repo"
    github.repos[project] = forge_repo(repo)
    resolver = resolver_for(github_settings(github))
    api = f"/api/v3/repos/{project}"

    assert await resolver.resolve(repo.url, "main") == ResolvedRef(
        shas["main"], "branch", "refs/heads/main"
    )
    [first] = github.requests
    assert (first.method, first.path) == ("GET", f"{api}/commits/heads/main")
    assert first.headers["authorization"] == f"token {TOKEN}"
    assert first.headers["accept"] == SHA_MEDIA
    assert "if-none-match" not in first.headers

    # asked again (the resolver's own cache has expired): a conditional request
    not_modified = counted("binderhub_service_forge_ref_requests_total", "github", "not_modified")
    github.clear()
    assert (await resolver.resolve(repo.url, "main")).sha == shas["main"]
    [again] = github.requests
    assert again.path == f"{api}/commits/heads/main"
    assert again.headers["if-none-match"].startswith('"')
    assert counted("binderhub_service_forge_ref_requests_total", "github", "not_modified") == (
        not_modified + 1
    )
    assert github.remaining == 4999  # a 304 does not count

    # a moved branch: the ETag no longer matches and the new commit comes back
    moved = repo.commit({"y": "2"})
    github.repos[project] = forge_repo(repo)
    assert (await resolver.resolve(repo.url, "main")).sha == moved

    github.clear()
    tag = await resolver.resolve(repo.url, "v1")
    assert tag == ResolvedRef(shas["main"], "tag", "refs/tags/v1")  # peeled, not the tag object
    assert requests_made(github) == [
        ("GET", f"{api}/commits/heads/v1"),
        ("GET", f"{api}/commits/tags/v1"),
    ]

    assert await resolver.resolve(repo.url, "feature/x") == ResolvedRef(
        shas["feature/x"], "branch", "refs/heads/feature/x"
    )
    short = shas["feature/x"][:9]
    assert await resolver.resolve(repo.url, short) == ResolvedRef(
        shas["feature/x"], "commit", shas["feature/x"]
    )
    assert await resolver.resolve(repo.url, "HEAD") == ResolvedRef(moved, "head", "HEAD")
    assert await resolver.resolve(repo.url, "refs/tags/v1") == tag

    github.clear()
    with pytest.raises(RefNotFound, match="has no branch, tag or commit named 'nope'"):
        await resolver.resolve(repo.url, "nope")
    assert requests_made(github) == [
        ("GET", f"{api}/commits/heads/nope"),
        ("GET", f"{api}/commits/tags/nope"),
        ("GET", api),
    ]


async def test_github_repository_the_token_cannot_see_is_asked_of_git(
    git_server: GitServer, github: GitHubStandIn, unique: str
) -> None:
    repo, shas = make_repo(git_server, f"hidden-{unique}/repo")  # not in the stand-in
    resolver = resolver_for(github_settings(github))
    assert (await resolver.resolve(repo.url, "main")).sha == shas["main"]
    assert requests_made(github)[-1] == ("GET", f"/api/v3/repos/hidden-{unique}/repo")


async def test_a_forge_that_fails_falls_back_to_git(
    git_server: GitServer,
    github: GitHubStandIn,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo, shas = make_repo(git_server, f"down-{unique}/repo")
    github.repos[f"down-{unique}/repo"] = forge_repo(repo)
    github.fail_with = 500
    before = counted("binderhub_service_forge_ref_requests_total", "github", "failed")
    resolver = resolver_for(github_settings(github))
    with caplog.at_level(logging.WARNING):
        assert await resolver.resolve(repo.url, "main") == ResolvedRef(
            shas["main"], "branch", "refs/heads/main"
        )
    assert counted("binderhub_service_forge_ref_requests_total", "github", "failed") == before + 1
    assert "GitHub answered 500" in caplog.text
    assert TOKEN not in caplog.text


async def test_github_rate_limit_is_an_error_with_a_retry_time(
    git_server: GitServer, github: GitHubStandIn, unique: str
) -> None:
    repo, _ = make_repo(git_server, f"limited-{unique}/repo")
    github.repos[f"limited-{unique}/repo"] = forge_repo(repo)
    github.rate_limited_until = time.time() + 120
    resolver = resolver_for(github_settings(github))
    with pytest.raises(ForgeRateLimited, match="GitHub API rate limit is exhausted") as raised:
        await resolver.resolve(repo.url, "main")
    assert 100 <= raised.value.retry_after <= 121
    assert len(github.requests) == 1  # no retries, no sleeping


def test_rate_limit_answers_503_with_retry_after(
    git_server: GitServer, github: GitHubStandIn, start_server: Callable[..., ServiceProcess]
) -> None:
    repo, _ = make_repo(git_server, "limited/http")
    github.repos["limited/http"] = forge_repo(repo)
    github.rate_limited_until = time.time() + 300
    server = start_server(forges=github_settings(github))
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert response.status_code == 503, response.text
        assert 280 <= int(response.headers["Retry-After"]) <= 301
        assert "rate limit is exhausted; retry after" in response.json()["error"]
        assert client.get("/api/v1/builds").json()["builds"] == []


# -- GitLab -----------------------------------------------------------------------


async def test_gitlab_resolves_refs_of_nested_projects_with_etags(
    git_server: GitServer, gitlab: GitLabStandIn, unique: str
) -> None:
    project = f"grp-{unique}/sub/proj"
    repo, shas = make_repo(git_server, project)
    gitlab.repos[project] = forge_repo(repo)
    resolver = resolver_for(gitlab_settings(gitlab))
    api = f"/api/v4/projects/grp-{unique}%2Fsub%2Fproj"

    assert await resolver.resolve(repo.url, "feature/x") == ResolvedRef(
        shas["feature/x"], "branch", "refs/heads/feature/x"
    )
    [first] = gitlab.requests
    assert (first.method, first.path) == ("GET", f"{api}/repository/branches/feature%2Fx")
    assert first.headers["private-token"] == TOKEN
    assert "authorization" not in first.headers

    gitlab.clear()
    assert (await resolver.resolve(repo.url, "feature/x")).sha == shas["feature/x"]
    assert gitlab.requests[0].headers["if-none-match"].startswith('W/"')

    gitlab.clear()
    assert await resolver.resolve(repo.url, "v1") == ResolvedRef(
        shas["main"], "tag", "refs/tags/v1"
    )
    assert await resolver.resolve(repo.url, shas["main"][:7]) == ResolvedRef(
        shas["main"], "commit", shas["main"]
    )
    assert await resolver.resolve(repo.url, "HEAD") == ResolvedRef(shas["main"], "head", "HEAD")
    assert requests_made(gitlab) == [
        ("GET", f"{api}/repository/branches/v1"),
        ("GET", f"{api}/repository/tags/v1"),
        ("GET", f"{api}/repository/branches/{shas['main'][:7]}"),
        ("GET", f"{api}/repository/tags/{shas['main'][:7]}"),
        ("GET", f"{api}/repository/commits/{shas['main'][:7]}"),
        ("GET", api),
        ("GET", f"{api}/repository/branches/main"),
    ]
    with pytest.raises(RefNotFound):
        await resolver.resolve(repo.url, "refs/heads/nope")


async def test_gitlab_rate_limit_is_an_error_with_a_retry_time(
    git_server: GitServer, gitlab: GitLabStandIn, unique: str
) -> None:
    project = f"lim-{unique}/proj"
    repo, _ = make_repo(git_server, project)
    gitlab.repos[project] = forge_repo(repo)
    gitlab.rate_limited_until = time.time() + 60
    resolver = resolver_for(gitlab_settings(gitlab))
    before = counted("binderhub_service_forge_ref_requests_total", "gitlab", "rate_limited")
    with pytest.raises(ForgeRateLimited, match="GitLab API rate limit is exhausted") as raised:
        await resolver.resolve(repo.url, "main")
    assert 50 <= raised.value.retry_after <= 61
    assert len(gitlab.requests) == 1  # python-gitlab did not sleep and retry
    assert counted("binderhub_service_forge_ref_requests_total", "gitlab", "rate_limited") == (
        before + 1
    )


# -- private repositories ------------------------------------------------------------


async def test_private_repository_credentials_reach_git_and_nothing_else(
    git_server: GitServer, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    _repo, shas = make_repo(git_server, f"private-{unique}/repo")
    good = basic("x-access-token", TOKEN)
    http = start_http_git_server(git_server.base, lambda auths: auths == [good])
    try:
        url = http.url(f"private-{unique}/repo")
        credentials = {
            "credentials": [
                {"url": f"http://127.0.0.1:{http.port}", "password": "host-wide-wrong"},
                {"url": f"http://127.0.0.1:{http.port}/private-{unique}", "password": TOKEN},
            ]
        }
        resolver = resolver_for(credentials)
        with caplog.at_level(logging.DEBUG):
            assert await resolver.resolve(url, "main") == ResolvedRef(
                shas["main"], "branch", "refs/heads/main"
            )
        assert http.authorizations
        assert all(a == [good] for a in http.authorizations)

        without = RefResolver(timeout=20, ttl=0)
        with pytest.raises(RepoNotReadable) as refused:
            await without.resolve(url, "main")
        assert http.authorizations[-1] == []
        wrong = resolver_for({"credentials": credentials["credentials"][:1]})
        with pytest.raises(RepoNotReadable) as refused_wrong:
            await wrong.resolve(url, "main")
        for text in (str(refused.value), str(refused_wrong.value), caplog.text):
            assert TOKEN not in text
            assert "host-wide-wrong" not in text
    finally:
        http.stop()


# -- hooks install ----------------------------------------------------------------------


def run_cli(tmp_path: Path, config: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "hooks.yml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [CLI, "hooks", "install", *args, "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def hook_config(forges: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return {
        "public_url": "https://hub.example.org/binder/",
        "state_path": str(tmp_path / "unused.sqlite"),
        "webhooks": {"github_secret": "gh-hook-secret", "gitlab_token": "gl-hook-secret"},
        "forges": forges,
    }


def bodies(requests: list[Recorded]) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.json() if r.body else None) for r in requests]


def test_hooks_install_github_creates_then_updates(tmp_path: Path, github: GitHubStandIn) -> None:
    github.repos["org/repo"] = ForgeRepo()
    config = hook_config(github_settings(github), tmp_path)
    hooks = "/api/v3/repos/org/repo/hooks"
    expected_body = {
        "name": "web",
        "config": {
            "url": "https://hub.example.org/binder/hooks/github",
            "content_type": "json",
            "secret": "gh-hook-secret",
            "insecure_ssl": "0",
        },
        "events": ["push"],
        "active": True,
    }

    created = run_cli(tmp_path, config, "github", "org/repo")
    assert created.returncode == 0, created.stderr
    hook_id = github.hooks["org/repo"][0]["id"]
    assert created.stdout == (
        f"created webhook {hook_id} of org/repo: https://hub.example.org/binder/hooks/github\n"
    )
    assert bodies(github.requests) == [("GET", hooks, None), ("POST", hooks, expected_body)]
    assert all(r.headers["authorization"] == f"token {TOKEN}" for r in github.requests)

    github.clear()
    config["webhooks"]["github_secret"] = "rotated-secret"
    updated = run_cli(tmp_path, config, "github", "org/repo")
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout.startswith(f"updated webhook {hook_id} of org/repo")
    expected_body["config"]["secret"] = "rotated-secret"  # type: ignore[index]
    assert bodies(github.requests) == [
        ("GET", hooks, None),
        ("PATCH", f"{hooks}/{hook_id}", expected_body),
    ]
    assert len(github.hooks["org/repo"]) == 1
    for output in (created.stdout + created.stderr, updated.stdout + updated.stderr):
        assert "secret" not in output
        assert TOKEN not in output


def test_hooks_install_gitlab_creates_then_updates(tmp_path: Path, gitlab: GitLabStandIn) -> None:
    gitlab.repos["group/sub/project"] = ForgeRepo()
    config = hook_config(gitlab_settings(gitlab), tmp_path)
    hooks = "/api/v4/projects/group%2Fsub%2Fproject/hooks"
    expected_body = {
        "url": "https://hub.example.org/binder/hooks/gitlab",
        "push_events": True,
        "tag_push_events": True,
        "token": "gl-hook-secret",
        "enable_ssl_verification": True,
    }
    created = run_cli(tmp_path, config, "gitlab", "group/sub/project")
    assert created.returncode == 0, created.stderr
    hook_id = gitlab.hooks["group/sub/project"][0]["id"]
    assert bodies(gitlab.requests) == [("GET", hooks, None), ("POST", hooks, expected_body)]
    assert all(r.headers["private-token"] == TOKEN for r in gitlab.requests)

    gitlab.clear()
    updated = run_cli(tmp_path, config, "gitlab", "group/sub/project")
    assert updated.returncode == 0, updated.stderr
    assert bodies(gitlab.requests) == [
        ("GET", hooks, None),
        ("PUT", f"{hooks}/{hook_id}", expected_body),
    ]


def test_hooks_install_refusals(tmp_path: Path, github: GitHubStandIn) -> None:
    github.repos["org/repo"] = ForgeRepo()
    config = hook_config(github_settings(github), tmp_path)
    del config["public_url"]
    missing = run_cli(tmp_path, config, "github", "org/repo")
    assert missing.returncode == 2
    assert "public_url is not set" in missing.stderr
    bad = run_cli(tmp_path, hook_config(github_settings(github), tmp_path), "github", "org")
    assert bad.returncode == 2
    assert "OWNER/REPO" in bad.stderr
    no_forge = run_cli(tmp_path, hook_config({}, tmp_path), "gitlab", "group/project")
    assert no_forge.returncode == 2
    assert "no gitlab forge with a token in forges.hosts" in no_forge.stderr
    assert github.requests == []

    github.fail_with = 500
    down = run_cli(tmp_path, hook_config(github_settings(github), tmp_path), "github", "org/repo")
    assert down.returncode == 1
    assert "GitHub answered 500" in down.stderr


def test_settings_fixture_accepts_forges(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(forges={"status_context": "ci/binder"})
    assert settings.forges.status_context == "ci/binder"
