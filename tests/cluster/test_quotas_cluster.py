"""Quotas with the kubernetes executor (issue 16): replicas share one count.

Each ``serve`` process has a state file of its own; what they share is the cluster.
A quota used up through one process is used up through the other, because both count
the build Jobs (which name their requester), not their own records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from testkit.components import ServiceProcess, dockerfile

from .conftest import GitServer

# the fixtures and helpers of the executor's tests (not their tests)
from .test_kubernetes_executor import (  # noqa: F401 - fixtures are used by name
    follow,
    jobs_in,
    role_kubeconfig,
    servers,
    settings_for,
)

pytestmark = [pytest.mark.cluster]


def used(server: ServiceProcess) -> int:
    with server.client() as http:
        (quota,) = http.get("/api/v1/quotas/me").json()["quotas"]
    return int(quota["used"])


def wait_used(server: ServiceProcess, count: int, timeout: float = 30) -> None:
    """Until ``server`` counts ``count`` builds (its watch has seen the Job)."""
    deadline = time.monotonic() + timeout
    while used(server) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{server.config.name} never counted {count} builds")
        time.sleep(0.2)


def post(server: ServiceProcess, url: str, sha: str) -> tuple[int, dict[str, Any]]:
    with server.client() as http:
        response = http.post("/api/v1/builds", json={"repo": url, "ref": sha})
    return response.status_code, response.json()


def test_two_service_processes_enforce_one_quota(
    servers: Callable[..., Any],  # noqa: F811 - the imported fixture
    settings_for: Callable[..., dict[str, Any]],  # noqa: F811 - the imported fixture
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    # names of their own: the cluster's git server is shared by the whole session
    blocker = git_server.create_repo(
        "quota-blocker.git", {"Dockerfile": dockerfile("RUN sleep 20")}
    )
    first = git_server.create_repo("quota.git", {"Dockerfile": dockerfile("RUN echo quota")})
    second = git_server.commit("quota.git", {"Dockerfile": dockerfile("RUN echo second")})
    third = git_server.commit("quota.git", {"Dockerfile": dockerfile("RUN echo third")})
    url, blocker_url = git_server.url("quota.git"), git_server.url("quota-blocker.git")
    values = {
        "quotas": {"per_user": {"builds_per_window": 2, "window": 600}},
        "limits": {"max_concurrent_builds": 1},
    }
    a = servers(settings_for(state="a.sqlite", **values))
    b = servers(settings_for(state="b.sqlite", **values))
    # through a: one build that runs, one that waits for the slot (its Job suspended)
    status, running = post(a, blocker_url, blocker)
    assert status == 202, running
    status, waiting = post(a, url, first)
    assert status == 202, waiting
    # b has no record of them, but sees their Jobs: the token's two builds are used there
    wait_used(b, 2)
    status, refused = post(b, url, second)
    assert status == 429, refused
    assert refused["quota"] == "per_user.builds_per_window"
    # joining a build a started, through b, costs nothing
    status, joined = post(b, blocker_url, blocker)
    assert status in (200, 202), joined
    assert joined["outcome"] in ("joined", "cached")
    # cancelled before it started (its Job deleted): free on every replica, though b
    # followed it and recorded it as failed
    with a.client() as http:
        assert http.delete(f"/api/v1/builds/{waiting['id']}").status_code == 200
    wait_used(b, 1)
    status, created = post(b, url, second)
    assert status == 202, created
    # ... and what b started counts on a
    wait_used(a, 2)
    status, refused = post(a, url, third)
    assert status == 429, refused
    names = {job.metadata.name for job in jobs_in(batch_v1, namespace)}
    assert names == {running["name"], created["name"]}
    assert follow(a, running["id"])["state"] == "built"
