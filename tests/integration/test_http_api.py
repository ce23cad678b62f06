"""The HTTP API of a real ``binderhub-service serve`` process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from jobs.store import SqliteStore
from testkit.components import GitServer, ServiceProcess, dockerfile, free_port

from .conftest import READ_TOKEN

StartServer = Callable[..., ServiceProcess]


def wait_for_state(
    client: httpx.Client, build_id: str, states: set[str], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/api/v1/builds/{build_id}").json()
        if body["state"] in states:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"build {build_id} stayed {body['state']}")
        time.sleep(0.1)


def records(server: ServiceProcess) -> int:
    store = SqliteStore(
        Path(str(server.config.read_text().split("state_path: ")[1].split("\n")[0]))
    )
    try:
        return len(store.recent(limit=10_000))
    finally:
        store.close()


def test_build_then_cache_hit_over_http(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"http-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert response.status_code == 202, response.text
        created = response.json()
        assert created["outcome"] == "created"
        assert created["state"] in ("queued", "running")
        assert len(created["id"]) == 32
        built = wait_for_state(client, created["id"], {"built", "failed"})
        assert built["state"] == "built", built["error"]
        assert built["image"] == created["image"]

        again = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert again.status_code == 200
        assert again.json() | {} == {
            "id": None,
            "repo": repo.url,
            "ref": "main",
            "sha": created["sha"],
            "image": created["image"],
            "state": "built",
            "outcome": "cached",
        }
        assert client.get("/health").json() == {"status": "ok"}
        metrics = client.get("/metrics").text
    for sample in (
        'binderhub_service_builds_total{outcome="built"} 1.0',
        'binderhub_service_build_duration_seconds_count{outcome="built"} 1.0',
        'binderhub_service_image_cache_total{result="miss"} 1.0',
        'binderhub_service_image_cache_total{result="hit"} 1.0',
        'binderhub_service_registry_check_seconds_count{result="missing"}',
        'binderhub_service_registry_check_seconds_count{result="found"}',
        "binderhub_service_queue_length 0.0",
        "binderhub_service_builds_running 0.0",
    ):
        assert sample in metrics, sample


BAD_BUILD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("form body", {"data": {"repo": "x"}}, 415, "Content-Type must be application/json"),
    ("no content type", {"content": b'{"repo": "x"}'}, 415, "not (none)"),
    ("truncated JSON", {"content": b'{"repo": "htt', "json_type": True}, 400, "not valid JSON"),
    ("JSON array", {"json": ["repo"]}, 400, "must be a JSON object"),
    ("non-UTF-8", {"content": b'{"repo": "\xff\xfe"}', "json_type": True}, 400, "not valid UTF-8"),
    ("missing repo", {"json": {"ref": "main"}}, 400, "missing field: repo"),
    ("repo not a string", {"json": {"repo": 5}}, 400, "field repo must be a str"),
    (
        "force not a bool",
        {"json": {"repo": "gh/a/b/c", "force": "yes"}},
        400,
        "field force must be a bool",
    ),
    (
        "unknown field",
        {"json": {"repo": "gh/a/b/c", "branch": "x"}},
        400,
        "unknown field(s): branch",
    ),
    (
        "oversize body",
        {"content": b'{"repo": "' + b"a" * (1024 * 1024 + 1) + b'"}', "json_type": True},
        413,
        "larger than",
    ),
    (
        "ref with a space",
        {"json": {"repo": "REPO", "ref": "a b"}},
        400,
        "ref must not contain spaces",
    ),
    ("ref with ..", {"json": {"repo": "REPO", "ref": "a..b"}}, 400, "must not contain '..'"),
    (
        "ref like an option",
        {"json": {"repo": "REPO", "ref": "--upload-pack=touch /tmp/x"}},
        400,
        "must not start with '-'",
    ),
    (
        "repo with credentials",
        {"json": {"repo": "https://u:p@github.com/a/b"}},
        400,
        "must not carry credentials",
    ),
    (
        "file:// repo",
        {"json": {"repo": "file:///etc"}},
        400,
        "file:// repository URLs are not allowed",
    ),
    ("ext:: repo", {"json": {"repo": "ext::sh -c touch% /tmp/pwned"}}, 400, "spaces"),
    ("ftp repo", {"json": {"repo": "ftp://example.org/a"}}, 400, "scheme 'ftp' is not allowed"),
    (
        "10k repo",
        {"json": {"repo": "https://example.org/" + "a" * 10_000}},
        400,
        "longer than 2048",
    ),
    ("10k ref", {"json": {"repo": "REPO", "ref": "a" * 10_000}}, 400, "longer than 255"),
    ("unknown shortcut", {"json": {"repo": "bb/owner/repo/main"}}, 400, "must be a URL"),
    ("bad gh shortcut", {"json": {"repo": "gh/owner/main"}}, 400, "gh/<owner>/<repo>/<ref>"),
    (
        "unknown branch",
        {"json": {"repo": "REPO", "ref": "no-such-branch"}},
        422,
        "has no branch or tag named 'no-such-branch'",
    ),
    ("missing repository", {"json": {"repo": "MISSING"}}, 422, "cannot read repository"),
]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [case[1:] for case in BAD_BUILD_REQUESTS],
    ids=[case[0] for case in BAD_BUILD_REQUESTS],
)
def test_bad_build_requests_get_a_clear_4xx_and_change_nothing(
    git_server: GitServer,
    start_server: StartServer,
    unique: str,
    payload: dict[str, Any],
    status: int,
    message: str,
) -> None:
    repo = git_server.create_repo(f"bad-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    kwargs = dict(payload)
    if "json" in kwargs:
        kwargs["json"] = _substitute(kwargs["json"], repo.url, git_server)
    headers = {"Content-Type": "application/json"} if kwargs.pop("json_type", False) else {}
    with server.client() as client:
        response = client.post("/api/v1/builds", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]
    assert records(server) == 0


def _substitute(body: Any, repo_url: str, git_server: GitServer) -> Any:
    if isinstance(body, dict):
        missing = f"git://127.0.0.1:{git_server.port}/does-not-exist"
        return {
            key: repo_url if value == "REPO" else missing if value == "MISSING" else value
            for key, value in body.items()
        }
    return body


def test_a_provider_and_spec_body_builds_what_the_stream_s_path_would(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    """``{"provider": "git", "spec": "<escaped URL>/<ref>"}`` (BinderHub's spelling)
    builds the repository at the ref, as ``repo`` and ``ref`` do: one image, and the
    second form is a cache hit. Bad pairs are named and change nothing."""
    repo = git_server.create_repo(f"spec-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    with server.client() as client:
        spec = f"{quote(repo.url, safe='')}/main"
        created = client.post("/api/v1/builds", json={"provider": "git", "spec": spec})
        assert created.status_code == 202, created.text
        assert (created.json()["repo"], created.json()["ref"]) == (repo.url, "main")
        done = wait_for_state(client, created.json()["id"], {"built", "failed"})
        assert done["state"] == "built"
        again = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert (again.status_code, again.json()["outcome"]) == (200, "cached")
        assert again.json()["image"] == created.json()["image"]

        for body, status, message in (
            (
                {"repo": repo.url, "provider": "git", "spec": spec},
                400,
                "give either repo (with ref) or provider and spec, not both",
            ),
            ({"provider": "git", "spec": spec, "ref": "main"}, 400, "give no ref with provider"),
            ({"provider": "git"}, 400, "missing field: spec"),
            (
                {"provider": "bitbucket", "spec": "o/r/main"},
                404,
                "no provider 'bitbucket': this service builds from gh, gl, git, gist, zenodo",
            ),
            (
                {"provider": "gh", "spec": "just-a-name"},
                400,
                "a gh spec is gh/<owner>/<repo>/<ref>",
            ),
            (
                {"provider": "zenodo", "spec": "10.5281/"},
                400,
                "a zenodo spec is zenodo/<DOI or record URL>",
            ),
            ({"provider": "git", "spec": 7}, 400, "field spec must be a str"),
        ):
            response = client.post("/api/v1/builds", json=body)
            assert (response.status_code, body) == (status, body), response.text
            assert message in response.json()["error"], response.text
    assert records(server) == 1


def test_a_repository_host_that_cannot_be_reached_is_503_with_retry_after(
    start_server: StartServer,
) -> None:
    """Temporary, unlike a repository that is not there (422): nothing listens on the
    port, so asking again later may work, and the answer says when."""
    server = start_server()
    url = f"git://127.0.0.1:{free_port()}/repo"
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": url})
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "cannot read repository" in response.json()["error"]
    assert records(server) == 0


def test_repos_outside_the_allow_list_are_refused(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"deny-{unique}", {"Dockerfile": dockerfile()})
    server = start_server(allowed_repos=["https://github.com/my-org/*"])
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": repo.url})
    assert response.status_code == 403
    assert response.json() == {"error": f"repository {repo.url} is not in allowed_repos"}
    assert records(server) == 0


def test_build_ids_and_methods(start_server: StartServer) -> None:
    server = start_server()
    with server.client() as client:
        invalid = client.get("/api/v1/builds/not-an-id")
        assert invalid.status_code == 400
        assert "invalid build id" in invalid.json()["error"]
        unknown = client.get("/api/v1/builds/" + "0" * 32)
        assert unknown.status_code == 404
        assert unknown.json() == {"error": f"no build with id {'0' * 32!r}"}
        wrong_method = client.put("/api/v1/builds", json={})
        assert wrong_method.status_code == 405
        assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
        assert client.get("/nowhere").status_code == 404


def test_tokens_and_scopes(git_server: GitServer, start_server: StartServer, unique: str) -> None:
    repo = git_server.create_repo(f"auth-{unique}", {"Dockerfile": dockerfile()})
    server = start_server()
    body = {"repo": repo.url}
    cases = [
        (None, 401, "this needs a token with the builds:write scope"),
        ("wrong-token", 401, "invalid token"),
        (READ_TOKEN, 403, "token 'reader' lacks the builds:write scope"),
    ]
    for token, status, message in cases:
        with server.client(token) as client:
            response = client.post("/api/v1/builds", json=body)
        assert response.status_code == status, (token, response.text)
        assert response.json() == {"error": message}
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    with server.client(None) as client:
        malformed = client.post("/api/v1/builds", json=body, headers={"Authorization": "Basic x"})
    assert malformed.status_code == 401
    assert records(server) == 0

    with server.client() as client:
        build_id = client.post("/api/v1/builds", json=body).json()["id"]
    with server.client(READ_TOKEN) as reader:
        assert reader.get(f"/api/v1/builds/{build_id}").status_code == 200
    with server.client(None) as anonymous:
        assert anonymous.get(f"/api/v1/builds/{build_id}").status_code == 401
        assert anonymous.get("/health").status_code == 200


def test_open_read_lets_anyone_read_but_not_write(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"open-{unique}", {"Dockerfile": dockerfile()})
    server = start_server(auth={"open_read": True})
    with server.client(None) as anonymous:
        assert anonymous.post("/api/v1/builds", json={"repo": repo.url}).status_code == 401
        assert anonymous.get("/api/v1/builds/" + "0" * 32).status_code == 404


def test_a_repository_quota_and_the_quotas_route(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"quota-{unique}", {"Dockerfile": dockerfile("RUN sleep 10")})
    server = start_server(
        quotas={"per_repo": {"max_queued": 1}, "per_user": {"builds_per_window": 5}}
    )
    with server.client() as client:
        first = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert first.status_code == 202, first.text
        other = repo.commit({"other.txt": "x"})
        refused = client.post("/api/v1/builds", json={"repo": repo.url, "ref": other})
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "30"
        assert refused.json()["quota"] == "per_repo.max_queued"
        assert refused.json()["frees_at"] is None
        assert records(server) == 1
        mine = client.get("/api/v1/quotas/me").json()
        assert mine["requester"] == "tests"
        assert [(q["quota"], q["used"]) for q in mine["quotas"]] == [
            ("per_user.builds_per_window", 1)
        ]
        bad = client.get("/api/v1/quotas/me", params={"user": "someone-else"})
        assert bad.status_code == 400
        assert bad.json() == {"error": "unknown query parameter(s): user"}
    with server.client(READ_TOKEN) as reader:
        theirs = reader.get("/api/v1/quotas/me").json()
        assert (theirs["requester"], theirs["quotas"][0]["used"]) == ("reader", 0)
    with server.client(None) as anonymous:
        assert anonymous.get("/api/v1/quotas/me").status_code == 401
