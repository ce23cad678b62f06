"""The service's own log: JSON lines with request ids, and no secrets."""

from __future__ import annotations

import json
from collections.abc import Callable

from testkit.components import GitServer, ServiceProcess, dockerfile

StartServer = Callable[..., ServiceProcess]


def test_json_logs_carry_request_ids_and_no_secrets(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"logs-{unique}", {"Dockerfile": dockerfile()})
    server = start_server(registry={"username": "u", "password": "registry-secret-value"})
    with server.client() as client:
        given = client.get("/health", headers={"X-Request-ID": "trace-me-1"})
        assert given.headers["x-request-id"] == "trace-me-1"
        made = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
        assert len(made.headers["x-request-id"]) == 32
        client.post("/api/v1/builds", json={"repo": repo.url, "ref": "nope"})
    with server.client("wrong-secret-token") as client:
        client.get("/api/v1/builds")

    server.stop()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "binderhub_service.access"]
    traced = [line for line in access if line.get("request_id") == "trace-me-1"]
    assert len(traced) == 1
    assert traced[0] | {"time": 0, "duration_ms": 0} == {
        "time": 0,
        "level": "info",
        "logger": "binderhub_service.access",
        "message": "GET /health 200",
        "request_id": "trace-me-1",
        "method": "GET",
        "path": "/health",
        "status": 200,
        "duration_ms": 0,
    }
    assert {line["status"] for line in access} >= {200, 401, 422}
    text = server.log()
    for secret in (server.token, "wrong-secret-token", "registry-secret-value"):
        assert secret is not None
        assert secret not in text
