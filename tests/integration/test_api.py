"""The rest of the build API: listing, logs (whole and followed), cancel, images."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from testkit.components import GitServer, ServiceProcess, dockerfile

from .test_http_api import records, wait_for_state

StartServer = Callable[..., ServiceProcess]


def follow(client: httpx.Client, build_id: str) -> list[tuple[str, dict[str, object]]]:
    """Read ``?follow=true`` to its end: (event name, data) pairs."""
    events: list[tuple[str, dict[str, object]]] = []
    name = "message"
    with client.stream("GET", f"/api/v1/builds/{build_id}/logs?follow=true") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
                if name == "end":
                    break
                name = "message"
    return events


def test_list_logs_follow_cancel_and_images(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    good = git_server.create_repo(f"good-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})
    slow = git_server.create_repo(
        f"slow-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    server = start_server()
    with server.client() as client:
        built_id = client.post("/api/v1/builds", json={"repo": good.url}).json()["id"]
        events = follow(client, built_id)  # from the start, live, to the end
        assert events[-1] == ("end", {"state": "built", "error": None})
        messages = [data["message"] for name, data in events if name == "message"]
        assert any("Successfully pushed" in str(m) for m in messages)
        whole = client.get(f"/api/v1/builds/{built_id}/logs").json()
        assert whole["state"] == "built"
        assert [line["message"] for line in whole["lines"]] == messages
        # following a finished build replays its log and ends
        assert follow(client, built_id) == events

        slow_id = client.post("/api/v1/builds", json={"repo": slow.url}).json()["id"]
        wait_for_state(client, slow_id, {"running"})
        cancelled = client.delete(f"/api/v1/builds/{slow_id}")
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled"
        again = client.delete(f"/api/v1/builds/{slow_id}")
        assert again.status_code == 409
        assert again.json() == {"error": f"build {slow_id} has already finished (cancelled)"}

        listed = client.get("/api/v1/builds").json()
        assert [b["id"] for b in listed["builds"]] == [slow_id, built_id]
        assert listed["next_cursor"] is None
        first = client.get("/api/v1/builds", params={"limit": 1}).json()
        assert [b["id"] for b in first["builds"]] == [slow_id]
        second = client.get(
            "/api/v1/builds", params={"limit": 1, "cursor": first["next_cursor"]}
        ).json()
        assert [b["id"] for b in second["builds"]] == [built_id]
        assert second["next_cursor"] is None
        by_state = client.get("/api/v1/builds", params={"state": "built"}).json()
        assert [b["id"] for b in by_state["builds"]] == [built_id]
        by_repo = client.get("/api/v1/builds", params={"repo": slow.url + ".git"}).json()
        assert [b["id"] for b in by_repo["builds"]] == [slow_id]

        images = client.get("/api/v1/images").json()
        build = client.get(f"/api/v1/builds/{built_id}").json()
        assert images == {
            "repos": [
                {
                    "repo": good.url,
                    "images": [
                        {
                            "image": build["image"],
                            "sha": build["sha"],
                            "ref": "HEAD",
                            "ref_kind": "head",
                            "built_at": build["finished_at"],
                            "build_id": built_id,
                        }
                    ],
                }
            ]
        }


BAD_QUERIES = [
    ("/api/v1/builds?state=done", 400, "state must be one of"),
    ("/api/v1/builds?limit=0", 400, "limit must be a whole number from 1 to 200"),
    ("/api/v1/builds?limit=201", 400, "limit must be a whole number"),
    ("/api/v1/builds?limit=-1", 400, "limit must be a whole number"),
    ("/api/v1/builds?cursor=abc", 400, "cursor is not a build id"),
    ("/api/v1/builds?cursor=" + "0" * 32, 400, "cursor is not a build id"),
    ("/api/v1/builds?repo=file:///etc", 400, "file:// repository URLs are not allowed"),
    ("/api/v1/builds?sort=asc", 400, "unknown query parameter(s): sort"),
    ("/api/v1/builds?limit=1&limit=2", 400, "given more than once"),
    ("/api/v1/builds/" + "0" * 32 + "/logs", 404, "no build with id"),
    ("/api/v1/builds/xyz/logs", 400, "invalid build id"),
    ("/api/v1/images?all=1", 400, "unknown query parameter(s): all"),
]


@pytest.mark.parametrize(("path", "status", "message"), BAD_QUERIES)
def test_bad_queries(start_server: StartServer, path: str, status: int, message: str) -> None:
    server = start_server()
    with server.client() as client:
        response = client.get(path)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_bad_cancels_change_nothing(start_server: StartServer) -> None:
    server = start_server()
    with server.client() as client:
        assert client.delete("/api/v1/builds/" + "0" * 32).status_code == 404
        assert client.delete("/api/v1/builds/nope").status_code == 400
    with server.client(None) as anonymous:
        assert anonymous.delete("/api/v1/builds/" + "0" * 32).status_code == 401
    assert records(server) == 0
