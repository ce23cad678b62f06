"""Nothing acknowledged is lost: kill -9 the service mid-build, start it again."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from jobs.store import SqliteStore
from testkit.components import GitServer, ServiceProcess, dockerfile, wait_until

from .test_http_api import wait_for_state

StartServer = Callable[..., ServiceProcess]


def test_kill_9_during_a_build_loses_nothing(
    git_server: GitServer, start_server: StartServer, unique: str, tmp_path: Path
) -> None:
    slow = git_server.create_repo(
        f"crash-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 4")}
    )
    queued = git_server.create_repo(f"after-{unique}", {"Dockerfile": dockerfile()})
    settings = {"limits": {"max_concurrent_builds": 1}}
    server = start_server(**settings)
    with server.client() as client:
        running_id = client.post("/api/v1/builds", json={"repo": slow.url}).json()["id"]
        queued_id = client.post("/api/v1/builds", json={"repo": queued.url}).json()["id"]
        wait_for_state(client, running_id, {"running"})

    state_path = tmp_path / "state" / "builds.sqlite"
    store = SqliteStore(state_path)
    wait_until(lambda: store.get(running_id).pid is not None)  # type: ignore[union-attr]
    pid = store.get(running_id).pid  # type: ignore[union-attr]
    store.close()
    assert pid is not None

    server.kill()
    # repo2docker dies with the service (PR_SET_PDEATHSIG): no build runs unseen
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10)

    server.start()
    with server.client() as client:
        first = wait_for_state(client, running_id, {"built", "failed", "cancelled"})
        second = wait_for_state(client, queued_id, {"built", "failed", "cancelled"})
    assert first["state"] == "built", first["error"]
    assert second["state"] == "built", second["error"]
    assert first["attempts"] == 2
    assert second["attempts"] == 1

    store = SqliteStore(state_path)
    try:
        log = [message for _, message in store.logs(running_id)]
        assert "the service restarted; this build runs again" in log
        assert len(store.recent(limit=100)) == 2
    finally:
        store.close()
    with server.client() as client:
        again = client.post("/api/v1/builds", json={"repo": slow.url})
    assert again.json()["outcome"] == "cached"
