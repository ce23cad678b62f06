"""The BinderHub-compatible stream of a real ``binderhub-service serve``: with httpx, and
with the unmodified npm ``@jupyterhub/binderhub-client`` in Node, as
jupyterhub-fancy-profiles uses it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from jobs.model import Build
from jobs.naming import image_name_for
from jobs.repo2docker.failures import retry_time
from jobs.store import SqliteStore, Store
from testkit.components import GitRepo, GitServer, ServiceProcess, dockerfile

from .conftest import READ_TOKEN, ROOT

StartServer = Callable[..., ServiceProcess]
SSE = {"Accept": "text/event-stream"}
BUILD_ONLY = {"build_only": "true"}


def git_spec(url: str, ref: str) -> str:
    """BinderHub's ``git`` provider spec: the URL-escaped repository URL, then the ref."""
    return f"git/{quote(url, safe='')}/{quote(ref, safe='')}"


def image_for(server: ServiceProcess, repo: GitRepo, sha: str) -> str:
    prefix = yaml.safe_load(server.config.read_text())["image_prefix"]
    return image_name_for(prefix, repo.url, sha)


def names(image: str) -> dict[str, str]:
    """How a ``ready`` event names its image: BinderHub's ``imageName`` and the
    ``image`` that @jupyterhub/binderhub-client documents."""
    return {"imageName": image, "image": image}


def head(repo: GitRepo) -> str:
    return (repo.path / ".git" / "refs" / "heads" / "main").read_text().strip()


@contextmanager
def store_of(server: ServiceProcess) -> Iterator[Store]:
    store = SqliteStore(Path(yaml.safe_load(server.config.read_text())["state_path"]))
    try:
        yield store
    finally:
        store.close()


def records(server: ServiceProcess) -> list[Build]:
    with store_of(server) as store:
        return store.recent(limit=1000)


@contextmanager
def open_stream(
    server: ServiceProcess, spec: str, params: dict[str, str] | None = None
) -> Iterator[tuple[httpx.Response, Iterator[dict[str, Any] | str]]]:
    """The response and its items: each event's data as a dict, each comment as a str."""
    with (
        server.client() as client,
        client.stream(
            "GET",
            f"/build/{spec}",
            headers=SSE,
            params=BUILD_ONLY if params is None else params,
            timeout=httpx.Timeout(30, read=120),
        ) as response,
    ):

        def items() -> Iterator[dict[str, Any] | str]:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[len("data: ") :])
                elif line.startswith(":"):
                    yield line

        yield response, items()


def stream(
    server: ServiceProcess, spec: str, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """All events of one stream, read to its end; checks the headers of a stream."""
    with open_stream(server, spec, params) as (response, items):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        return [item for item in items if isinstance(item, dict)]


def test_auth_and_accept_are_checked_before_the_stream(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"bh-auth-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    path = f"/build/{git_spec(repo.url, 'main')}"
    cases: list[tuple[str | None, dict[str, str], int, str]] = [
        (None, SSE, 401, "this needs a token with the builds:write scope"),
        ("wrong", SSE, 401, "invalid token"),
        (READ_TOKEN, SSE, 403, "token 'reader' lacks the builds:write scope"),
        ("default", {}, 400, "send Accept: text/event-stream"),
        ("default", {"Accept": "*/*"}, 400, "send Accept: text/event-stream"),
        ("default", {"Accept": "application/json"}, 400, "send Accept: text/event-stream"),
    ]
    for token, headers, status, message in cases:
        with server.client(token) as client:
            response = client.get(path, headers=headers, params=BUILD_ONLY)
        assert response.status_code == status, (token, headers, response.text)
        assert response.headers["content-type"] == "application/json"
        assert message in response.json()["error"]
    assert records(server) == []


BAD_STREAMS: list[tuple[str, str, dict[str, str], int, str]] = [
    (
        "unknown provider",
        "bitbucket/o/r/main",
        BUILD_ONLY,
        404,
        "no provider 'bitbucket'",
    ),
    ("bad gh spec", "gh/owner-only/main", BUILD_ONLY, 400, "gh/<owner>/<repo>/<ref>"),
    ("unescaped git URL", "git/REPO_RAW/main", BUILD_ONLY, 400, "URL-escaped repository URL"),
    ("no build_only", "git/REPO/main", {}, 400, "does not launch them"),
    ("build_only=false", "git/REPO/main", {"build_only": "false"}, 400, "does not launch them"),
    ("bad ref", "git/REPO/a..b", BUILD_ONLY, 400, "must not contain '..'"),
    ("unknown branch", "git/REPO/nope", BUILD_ONLY, 422, "no branch or tag named 'nope'"),
    ("missing repository", "git/MISSING/main", BUILD_ONLY, 422, "cannot read repository"),
    ("file URL", "git/file%3A%2F%2F%2Fetc/main", BUILD_ONLY, 400, "file:// repository URLs"),
    ("force=yes", "git/REPO/main", {**BUILD_ONLY, "force": "yes"}, 400, "force must be true or"),
]


@pytest.mark.parametrize(
    ("spec", "params", "status", "message"),
    [case[1:] for case in BAD_STREAMS],
    ids=[case[0] for case in BAD_STREAMS],
)
def test_bad_requests_end_in_one_failed_event_with_a_status(
    git_server: GitServer,
    start_server: StartServer,
    unique: str,
    spec: str,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    repo = git_server.create_repo(f"bh-bad-{unique}", {"Dockerfile": dockerfile()})
    missing = f"git://127.0.0.1:{git_server.port}/does-not-exist"
    spec = (
        spec.replace("REPO_RAW", repo.url)
        .replace("REPO", quote(repo.url, safe=""))
        .replace("MISSING", quote(missing, safe=""))
    )
    server = start_server()
    events = stream(server, spec, params)
    assert len(events) == 1, events
    assert events[0]["phase"] == "failed"
    assert events[0]["status_code"] == status
    assert message in events[0]["message"]
    assert events[0]["message"].endswith("\n")
    assert records(server) == []


def test_repos_outside_the_allow_list_get_a_403_event(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"bh-deny-{unique}", {"Dockerfile": dockerfile()})
    server = start_server(allowed_repos=["https://github.com/my-org/*"])
    assert stream(server, git_spec(repo.url, "main")) == [
        {
            "phase": "failed",
            "status_code": 403,
            "message": f"repository {repo.url} is not in allowed_repos\n",
        }
    ]


def test_build_streams_waiting_building_ready_then_a_cache_hit_is_ready_at_once(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"bh-build-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    image = image_for(server, repo, head(repo))

    events = stream(server, git_spec(repo.url, "main"))
    assert events[0] == {"phase": "waiting", "message": "Waiting for build to start...\n"}
    phases = [event.get("phase") for event in events]
    assert "building" in phases
    assert phases.index("fetching") < phases.index("building") < len(phases) - 1
    assert all(event["message"].endswith("\n") for event in events)
    assert events[-1] == {"phase": "ready", "message": "Done! Image built\n", **names(image)}
    assert [event["phase"] for event in events if event.get("phase") in ("ready", "failed")] == [
        "ready"
    ]

    started = time.monotonic()
    assert stream(server, git_spec(repo.url, "main")) == [
        {"phase": "ready", "message": "Done! Found built image\n", **names(image)}
    ]
    assert time.monotonic() - started < 10
    assert [build.state for build in records(server)] == ["built"]


def test_a_failed_build_ends_with_its_error_and_no_status(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(
        f"bh-fail-{unique}", {"Dockerfile": dockerfile("RUN echo broken && false")}
    )
    server = start_server()
    events = stream(server, git_spec(repo.url, "main"))
    last = events[-1]
    assert last["phase"] == "failed"
    assert "status_code" not in last
    assert last["message"].startswith("Build failed: ")
    (build,) = records(server)
    assert last["message"] == f"Build failed: {build.error}\n"
    # repo2docker's own "failed" lines are passed on without the phase that would stop
    # clients before they see the error above
    assert [event for event in events if event.get("phase") == "failed"] == [last]

    again = stream(server, git_spec(repo.url, "main"))
    assert len(again) == 1
    assert again[0]["phase"] == "failed"
    assert again[0]["message"].startswith(f"The last build of commit {build.sha} failed")


def test_force_builds_a_commit_that_failed_before_with_the_write_scope(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"bh-force-{unique}", {"Dockerfile": dockerfile("RUN false")})
    server = start_server()
    spec = git_spec(repo.url, "main")
    assert stream(server, spec)[-1]["message"].startswith("Build failed: a Dockerfile step failed")
    (failed,) = records(server)

    refused = stream(server, spec)
    assert len(refused) == 1
    assert refused[0]["message"].endswith(
        ". Push a fix; it is tried again after "
        f"{retry_time(failed.failure_remembered_until(86400.0) or 0)}, "
        "or now when asked with force=true.\n"
    )
    assert len(records(server)) == 1

    # the stream (force or not) needs builds:write: a reader is refused before it starts
    with server.client(READ_TOKEN) as client:
        response = client.get(f"/build/{spec}", headers=SSE, params={**BUILD_ONLY, "force": "true"})
    assert response.status_code == 403
    assert "lacks the builds:write scope" in response.json()["error"]
    assert len(records(server)) == 1

    forced = stream(server, spec, {**BUILD_ONLY, "force": "true"})
    assert forced[0] == {"phase": "waiting", "message": "Waiting for build to start...\n"}
    assert forced[-1]["message"].startswith("Build failed: a Dockerfile step failed")
    assert len(records(server)) == 2


def test_a_client_that_goes_away_does_not_cancel_and_the_next_one_joins(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(
        f"bh-leave-{unique}",
        {"Dockerfile": dockerfile("RUN echo step-one && sleep 8", "RUN echo step-two")},
    )
    server = start_server()
    spec = git_spec(repo.url, "main")
    image = image_for(server, repo, head(repo))

    with open_stream(server, spec) as (response, items):
        assert response.status_code == 200
        for item in items:
            if isinstance(item, dict) and "step-one" in item["message"]:
                break
    # the connection is closed: the build must go on
    (build,) = records(server)
    assert build.state == "running"

    # a second client joins the same build and is told what happened so far
    events = stream(server, spec)
    assert events[0]["phase"] == "waiting"
    assert any("step-one" in event["message"] for event in events)
    assert events[-1] == {"phase": "ready", "message": "Done! Image built\n", **names(image)}
    (build,) = records(server)
    assert build.state == "built"
    assert build.image == image
    assert "cancel" not in server.log().lower()


def test_a_stream_follows_its_branch_when_a_newer_commit_supersedes_the_build(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    busy = git_server.create_repo(f"bh-busy-{unique}", {"Dockerfile": dockerfile("RUN sleep 6")})
    repo = git_server.create_repo(f"bh-moving-{unique}", {"Dockerfile": dockerfile()})
    # one build at a time keeps the stream's build queued; no ref cache lets both the
    # request below and the stream's next request see the newer commit at once
    server = start_server(limits={"max_concurrent_builds": 1}, ref_cache_seconds=0)
    with server.client() as client:
        assert client.post("/api/v1/builds", json={"repo": busy.url}).status_code == 202
        with open_stream(server, git_spec(repo.url, "main")) as (response, items):
            assert response.status_code == 200
            first = next(items)
            assert first == {"phase": "waiting", "message": "Waiting for build to start...\n"}
            newer = repo.commit({"README.md": "newer"})
            answer = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
            assert answer.status_code == 202, answer.text
            events = [item for item in items if isinstance(item, dict)]
    assert {
        "phase": "waiting",
        "message": "A newer commit of main superseded this build; following it\n",
    } in events
    assert events[-1] == {
        "phase": "ready",
        "message": "Done! Image built\n",
        **names(image_for(server, repo, newer)),
    }
    states = sorted(str(build.state) for build in records(server) if build.repo == repo.url)
    assert states == ["built", "superseded"]


def test_versions_and_repo_providers(start_server: StartServer) -> None:
    server = start_server()
    with server.client(None) as anonymous:
        versions = anonymous.get("/versions")
        providers = anonymous.get("/api/repoproviders")
    assert versions.status_code == 200
    assert versions.json()["builder"] == "repo2docker 2024.7.0"
    assert versions.json()["builder_info"] == {"repo2docker-version": "2024.7.0"}
    assert versions.json()["binderhub"].startswith("binderhub-service ")
    assert providers.status_code == 200
    ids = [provider["id"] for provider in providers.json()]
    assert ids == [
        "gh",
        "gl",
        "git",
        "gist",
        "zenodo",
        "figshare",
        "dataverse",
        "hydroshare",
        "ckan",
        "swh",
    ]
    records = ("zenodo", "figshare", "dataverse", "hydroshare", "ckan", "swh")
    for provider in providers.json():  # a record's version is the service's to resolve
        enabled = (
            {"enabled": False}
            if provider["id"] in records
            else {"enabled": True, "default": "HEAD"}
        )
        assert provider["ref"] == enabled, provider
    assert providers.json()[0]["spec"] == {
        "form": "gh/<owner>/<repo>/<ref>",
        "example": "gh/binder-examples/requirements/HEAD",
    }
    assert providers.json()[4]["spec"] == {
        "form": "zenodo/<DOI or record URL>",
        "example": "zenodo/10.5281/zenodo.3242074",
    }


# -- the npm client, unmodified, in Node --------------------------------------


@pytest.fixture(scope="session")
def node_client() -> Path:
    subprocess.run([ROOT / "scripts" / "ensure-node-deps.sh"], check=True)
    return ROOT / "tests" / "node" / "build.mjs"


def run_node_client(
    node_client: Path, server: ServiceProcess, spec: str, token: str
) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(
        ["node", node_client, f"{server.url}/build/", spec, token],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(done.stdout, done.stderr)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_binderhub_client_reports_ready_for_a_build_and_a_cache_hit(
    git_server: GitServer, start_server: StartServer, unique: str, node_client: Path
) -> None:
    repo = git_server.create_repo(f"bh-node-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    assert server.token is not None
    image = image_for(server, repo, head(repo))

    code, events = run_node_client(node_client, server, git_spec(repo.url, "main"), server.token)
    assert code == 0
    assert events[0]["phase"] == "waiting"
    assert "building" in [event.get("phase") for event in events]
    assert events[-1] == {"phase": "ready", "message": "Done! Image built\n", **names(image)}

    code, events = run_node_client(node_client, server, git_spec(repo.url, "main"), server.token)
    assert code == 0
    assert events == [{"phase": "ready", "message": "Done! Found built image\n", **names(image)}]


def test_the_binderhub_client_reports_auth_and_request_failures(
    git_server: GitServer, start_server: StartServer, unique: str, node_client: Path
) -> None:
    repo = git_server.create_repo(f"bh-node-bad-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    assert server.token is not None

    code, events = run_node_client(node_client, server, git_spec(repo.url, "main"), "wrong")
    assert code == 1
    assert events[0]["phase"] == "failed"
    assert events[0]["message"].startswith("Failed to connect to event stream: 401")

    code, events = run_node_client(node_client, server, git_spec(repo.url, "nope"), server.token)
    assert code == 1
    assert events == [
        {
            "phase": "failed",
            "status_code": 422,
            "message": f"{repo.url} has no branch or tag named 'nope'\n",
        }
    ]
    assert records(server) == []
