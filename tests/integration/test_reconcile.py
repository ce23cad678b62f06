"""The reconciler against the real git daemon, registry and builder: configured repos,
no webhook sent, and the missing images of matching branches and tags get built."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobs.coordinator.reconcile import list_remote_refs, reconcile_once
from jobs.settings import Settings
from jobs.sources.specs import ResolvedRef
from testkit.components import GitServer, ServiceProcess, dockerfile, git

pytestmark = pytest.mark.anyio

StartService = Callable[[Settings], Any]


async def test_ls_remote_lists_branches_tags_and_the_default_branch(
    git_server: GitServer, unique: str
) -> None:
    repo = git_server.create_repo(f"ls-{unique}", {"Dockerfile": dockerfile()})
    first = git("rev-parse", "HEAD", cwd=repo.path)
    repo.tag("v1", annotated=True)
    second = repo.commit({"a": "1"}, branch="trunk")
    git("checkout", "-q", "main", cwd=repo.path)  # the served repository's HEAD
    remote = await list_remote_refs(repo.url, git_timeout=20, allow_file=False)
    assert remote.default_branch == "main"
    assert set(remote.refs) == {
        ResolvedRef(first, "branch", "refs/heads/main"),
        ResolvedRef(second, "branch", "refs/heads/trunk"),
        ResolvedRef(first, "tag", "refs/tags/v1"),  # peeled: the commit, not the tag object
    }
    git("symbolic-ref", "HEAD", "refs/heads/trunk", cwd=repo.path)
    remote = await list_remote_refs(repo.url, git_timeout=20, allow_file=False)
    assert remote.default_branch == "trunk"


async def test_reconcile_queues_missing_commits_of_matching_refs_only(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"rec-{unique}", {"Dockerfile": dockerfile()})
    tagged = git("rev-parse", "HEAD", cwd=repo.path)
    repo.tag("v1", annotated=True)
    repo.tag("nightly")
    main = repo.commit({"Dockerfile": dockerfile("RUN true")})
    repo.commit({"feature": "x"}, branch="feature")
    git("checkout", "-q", "main", cwd=repo.path)
    other = git_server.create_repo(f"rec-other-{unique}", {"Dockerfile": dockerfile()})
    settings = make_settings(
        repos=[
            {"url": f"git://127.0.0.1:{git_server.port}/does-not-exist-{unique}"},
            {"url": repo.url, "tags": ["v*"]},
        ],
        limits={"max_concurrent_builds": 2, "max_concurrent_builds_per_repo": 2},
    )
    service = await start_service(settings)

    first = await reconcile_once(service)
    assert sorted((o.status, o.ref, o.sha) for o in first) == [
        ("created", "main", main),
        ("created", "v1", tagged),
    ]
    assert all(o.build is not None and o.build.trigger == "reconcile" for o in first)
    assert {o.repo for o in first} == {repo.url} != {other.url}

    second = await reconcile_once(service)
    assert sorted((o.status, o.ref) for o in second) == [("joined", "main"), ("joined", "v1")]
    assert len(service.store.recent(limit=100)) == 2

    async with asyncio.timeout(240):
        await service.wait_idle()
    assert [b.state for b in service.store.recent(limit=100)] == ["built", "built"]
    third = await reconcile_once(service)
    assert sorted((o.status, o.ref) for o in third) == [("cached", "main"), ("cached", "v1")]
    assert len(service.store.recent(limit=100)) == 2


async def test_reconcile_skips_repos_outside_allowed_repos(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"deny-{unique}", {"Dockerfile": dockerfile()})
    settings = make_settings(repos=[{"url": repo.url}], allowed_repos=["https://example.org/*"])
    service = await start_service(settings)
    assert await reconcile_once(service) == []
    assert service.store.recent(limit=10) == []


def test_the_server_reconciles_in_the_background(
    git_server: GitServer, start_server: Callable[..., ServiceProcess], unique: str
) -> None:
    repo = git_server.create_repo(f"bg-{unique}", {"Dockerfile": dockerfile()})
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    server = start_server(repos=[{"url": repo.url}], webhooks={"reconcile_interval": 0.5})
    state = server.config.read_text().split("state_path: ")[1].split("\n")[0]
    deadline = time.monotonic() + 30
    rows: list[tuple[str, str, str]] = []
    while not rows and time.monotonic() < deadline:
        db = sqlite3.connect(state)
        try:
            rows = db.execute("SELECT trigger, ref, sha FROM builds").fetchall()
        finally:
            db.close()
        time.sleep(0.2)
    assert rows == [("reconcile", "main", sha)]


def test_reconciling_is_off_by_default(
    git_server: GitServer, start_server: Callable[..., ServiceProcess], unique: str
) -> None:
    repo = git_server.create_repo(f"off-{unique}", {"Dockerfile": dockerfile()})
    server = start_server(repos=[{"url": repo.url}])
    time.sleep(1.5)
    db = sqlite3.connect(server.config.read_text().split("state_path: ")[1].split("\n")[0])
    try:
        assert db.execute("SELECT COUNT(*) FROM builds").fetchone() == (0,)
    finally:
        db.close()
