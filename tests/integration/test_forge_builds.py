"""Real builds (git servers, repo2docker, Docker daemon, registry) that report commit
statuses to the forge stand-ins: pending then success, failure with the reason, and a
forge that answers 500 without failing the build. The private repository is cloned
over HTTP from a real git server that demands the forge token."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from jobs.factory import drain_statuses
from jobs.model import BuildState
from jobs.settings import Settings
from testkit.components import GitServer, ServiceProcess, dockerfile, wait_until

from .forge_standins import (
    GitHubStandIn,
    GitLabStandIn,
    Recorded,
    basic,
    start_http_git_server,
)
from .test_forge_api import TOKEN, forge_repo, make_repo
from .test_http_api import wait_for_state
from .test_pipeline import StartService, wait_finished
from .test_webhooks import WEBHOOKS, for_github, send_github

pytestmark = pytest.mark.anyio
PUBLIC_URL = "https://hub.example.org/binder/"


def github_host(standin: GitHubStandIn, url: str = "http://127.0.0.1") -> dict[str, Any]:
    return {"kind": "github", "url": url, "api_url": standin.api_url, "token": TOKEN}


async def test_private_repo_builds_and_reports_pending_then_success(
    git_server: GitServer,
    github: GitHubStandIn,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    project = f"org-{unique}/private"
    repo, shas = make_repo(git_server, project)
    github.repos[project] = forge_repo(repo)
    good = basic("x-access-token", TOKEN)
    http = start_http_git_server(git_server.base, lambda auths: auths == [good])
    try:
        url = http.url(project)
        settings = make_settings(
            public_url=PUBLIC_URL,
            forges={
                # the web host is the git server, the API the stand-in: as with GitHub
                # Enterprise, whose token also reads its repositories over HTTPS
                "hosts": [github_host(github, f"http://127.0.0.1:{http.port}")],
                "status_context": "ci/binder",
            },
        )
        service = await start_service(settings)
        outcome = await service.request(url, "main")
        assert outcome.build is not None
        assert outcome.sha == shas["main"]
        await wait_finished(service, outcome.build.id, within=300)
        build = service.get(outcome.build.id)
        assert build.state is BuildState.BUILT, build.error
        await drain_statuses(service)
    finally:
        http.stop()

    # resolved through the API, cloned with the token: every git request carried it
    assert github.requests[0].path == f"/api/v3/repos/{project}/commits/heads/main"
    assert http.authorizations
    assert all(auths == [good] for auths in http.authorizations)

    posts = github.requests_to("POST", "/statuses/")
    assert posts
    assert {r.path for r in posts} == {f"/api/v3/repos/{project}/statuses/{shas['main']}"}
    assert all(r.headers["authorization"] == f"token {TOKEN}" for r in posts)
    bodies = [r.json() for r in posts]
    target = f"{PUBLIC_URL}#build={build.id}"
    assert bodies[-1] == {
        "state": "success",
        "description": f"image {build.image}",
        "context": "ci/binder",
        "target_url": target,
    }
    # queued and running may be one status when running overtook queued in flight
    assert [b["state"] for b in bodies[:-1]] in (["pending"], ["pending", "pending"])
    assert bodies[0]["description"] in ("waiting for a build slot", "building the image")
    assert all(b["target_url"] == target and b["context"] == "ci/binder" for b in bodies)

    logs = "\n".join(message for _, message in service.store.logs(build.id))
    assert TOKEN not in logs
    assert good.split()[1] not in logs


async def test_failed_build_reports_failure_with_the_reason(
    git_server: GitServer,
    github: GitHubStandIn,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    project = f"org-{unique}/broken"
    repo = git_server.create_repo(project, {"Dockerfile": dockerfile("RUN false")})
    github.repos[project] = forge_repo(repo)
    settings = make_settings(public_url=PUBLIC_URL, forges={"hosts": [github_host(github)]})
    service = await start_service(settings)
    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id, within=300)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.FAILED
    await drain_statuses(service)

    last = github.requests_to("POST", "/statuses/")[-1].json()
    assert last["state"] == "failure"
    assert last["context"] == "binderhub-service"
    assert last["description"].startswith("build failed: a Dockerfile step failed: ")
    assert last["description"] == f"build failed: {build.error}"[:139] + (
        "…" if len(f"build failed: {build.error}") > 140 else ""
    )


async def test_gitlab_build_reports_pending_running_success(
    git_server: GitServer,
    gitlab: GitLabStandIn,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    project = f"grp-{unique}/sub/proj"
    repo, shas = make_repo(git_server, project)
    gitlab.repos[project] = forge_repo(repo)
    host = {"kind": "gitlab", "url": "http://127.0.0.1", "api_url": gitlab.url, "token": TOKEN}
    service = await start_service(make_settings(public_url=PUBLIC_URL, forges={"hosts": [host]}))
    outcome = await service.request(repo.url, "v1")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id, within=300)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.BUILT, build.error
    await drain_statuses(service)

    posts = gitlab.requests_to("POST", "/statuses/")
    assert {r.path for r in posts} == {
        f"/api/v4/projects/grp-{unique}%2Fsub%2Fproj/statuses/{shas['main']}"
    }
    assert all(r.headers["private-token"] == TOKEN for r in posts)
    bodies = [r.json() for r in posts]
    assert bodies[-1] == {
        "state": "success",
        "name": "binderhub-service",
        "description": f"image {build.image}",
        "target_url": f"{PUBLIC_URL}#build={build.id}",
        "ref": "v1",
    }
    assert [b["state"] for b in bodies[:-1]] in (["pending", "running"], ["running"])


def forge_metric(client: Any, result: str) -> float:
    text = client.get("/metrics").text
    pattern = (
        r'^binderhub_service_forge_statuses_total\{forge="github",result="' + result + r'"\} (\S+)$'
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_forge_answering_500_never_fails_a_webhook_build(
    git_server: GitServer,
    github: GitHubStandIn,
    start_server: Callable[..., ServiceProcess],
    unique: str,
) -> None:
    project = f"org-{unique}/hooked"
    repo, shas = make_repo(git_server, project)
    github.repos[project] = forge_repo(repo)
    github.fail_with = 500
    server = start_server(
        repos=[{"url": repo.url}],
        webhooks=WEBHOOKS,
        public_url=PUBLIC_URL,
        forges={"hosts": [github_host(github)]},
    )
    with server.client() as client:
        delivery = for_github("github-push-branch-update.json", repo, shas["main"])
        response = send_github(client, delivery)
        assert response.status_code == 202, response.text
        build_id = response.json()["builds"][0]["id"]
        built = wait_for_state(client, build_id, {"built", "failed"}, timeout=300)
        assert built["state"] == "built", built["error"]

        def success_tried() -> bool:
            posts = github.requests_to("POST", "/statuses/")
            return bool(posts) and posts[-1].json()["state"] == "success"

        wait_until(success_tried, timeout=60)
        posts = github.requests_to("POST", "/statuses/")
        wait_until(lambda: forge_metric(client, "failed") == len(posts), timeout=60)
        assert forge_metric(client, "sent") == 0
        assert client.get(f"/api/v1/builds/{build_id}").json()["state"] == "built"
    assert "GitHub answered 500" in server.log()
    assert TOKEN not in server.log()


def test_a_stopping_server_sends_the_last_commit_status_before_it_exits(
    git_server: GitServer,
    github: GitHubStandIn,
    start_server: Callable[..., ServiceProcess],
    unique: str,
) -> None:
    project = f"org-{unique}/stopping"
    repo, shas = make_repo(git_server, project)
    github.repos[project] = forge_repo(repo)
    held, release = threading.Event(), threading.Event()

    def slow_statuses(request: Recorded) -> None:
        # the forge holds the first status until the server is stopping, so that the
        # later ones ("success") wait in the server's queue when it is told to stop
        if request.method == "POST" and "/statuses/" in request.path:
            held.set()
            release.wait(300)

    github.before_answer = slow_statuses
    # patient enough to wait out the whole build for the held status
    host = {**github_host(github), "timeout": 300}
    server = start_server(public_url=PUBLIC_URL, forges={"hosts": [host]})
    assert server.process is not None
    try:
        with server.client() as client:
            response = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
            assert response.status_code == 202, response.text
            built = wait_for_state(client, response.json()["id"], {"built", "failed"}, 300)
            assert built["state"] == "built", built["error"]
        wait_until(held.is_set)
        server.process.terminate()
        # the forge answers once the server is stopping: with the drain, while it waits
        # for its statuses; without, after its tasks were given up
        wait_until(
            lambda: (
                "sending the commit statuses" in server.log()
                or "Application shutdown complete" in server.log()
            )
        )
    finally:
        release.set()
    server.process.wait(60)  # uvicorn ends a graceful stop with the signal it got
    assert "Application shutdown complete" in server.log()
    states = [r.json()["state"] for r in github.requests_to("POST", "/statuses/")]
    assert states[-1:] == ["success"], states
    assert all(r.path.endswith(shas["main"]) for r in github.requests_to("POST", "/statuses/"))
    assert "gave up on the commit statuses" not in server.log()
