"""Quotas (issue 16) behind a real JupyterHub: two hub users, one over quota.

One hub, one ``binderhub-service serve`` with ``quotas.per_user.builds_per_window: 1``.
alice builds once and is then refused (429 over the API, one ``failed`` event on the
BinderHub stream), while carol still builds; cache hits and joins cost nothing, even
over quota; a restart of the service keeps the counts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from testkit.components import GitRepo, GitServer, Registry, ServiceProcess
from tests.conftest import failed

from .hub_components import Hub, hub_with_service, print_logs
from .test_jupyterhub import ACCESS, SSE, git_spec, sse_events, through_proxy, wait_finished

NAME = "binder"
SERVICE_TOKEN = "binder-service-token-for-quota-tests"
WINDOW = 3600


@pytest.fixture(scope="module")
def quota_setup(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, git_server: GitServer
) -> Iterator[tuple[Hub, ServiceProcess, GitRepo]]:
    with hub_with_service(
        tmp_path_factory,
        registry,
        git_server,
        kind="quota",
        service_name=NAME,
        service_token=SERVICE_TOKEN,
        settings={"quotas": {"per_user": {"builds_per_window": 1, "window": WINDOW}}},
        jupyterhub={},
        users={"alice": ACCESS, "carol": ACCESS},
    ) as setup:
        yield setup


@pytest.fixture
def _logs_on_failure(
    quota_setup: tuple[Hub, ServiceProcess, GitRepo], request: pytest.FixtureRequest
) -> Iterator[None]:
    yield
    if failed(request):
        print_logs(*quota_setup[:2])


pytestmark = pytest.mark.usefixtures("_logs_on_failure")


def post(client: httpx.Client, repo: GitRepo, sha: str) -> httpx.Response:
    return client.post("/api/v1/builds", json={"repo": repo.url, "ref": sha})


def build_ids(client: httpx.Client) -> list[str]:
    return [build["id"] for build in client.get("/api/v1/builds").json()["builds"]]


def assert_refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    body: dict[str, Any] = response.json()
    assert body["quota"] == "per_user.builds_per_window"
    assert "user:alice started 1 builds in the last 3600 s" in body["error"]
    retry = int(response.headers["Retry-After"])
    assert body["retry_after"] == retry
    assert 0 < retry <= WINDOW
    assert body["frees_at"] > time.time()
    return body


def test_one_user_over_quota_is_refused_while_another_builds(
    quota_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, service, repo = quota_setup
    first = repo.commit({"one.txt": "1"})
    second = repo.commit({"two.txt": "2"})
    third = repo.commit({"three.txt": "3"})
    alice_token, carol_token = hub.token_for("alice"), hub.token_for("carol")
    with through_proxy(hub, alice_token) as alice, through_proxy(hub, carol_token) as carol:
        # alice's one build, and at the same time carol's
        mine = post(alice, repo, first)
        assert mine.status_code == 202, mine.text
        theirs = post(carol, repo, second)
        assert theirs.status_code == 202, theirs.text
        # asking again for a build under way (or done by now) is free
        again = post(alice, repo, first)
        assert again.status_code in (200, 202), again.text
        assert again.json()["outcome"] in ("joined", "cached")
        # alice is over quota for anything new; nothing is recorded for the refusal
        before = build_ids(alice)
        assert_refused(post(alice, repo, third))
        assert build_ids(alice) == before
        # ... but a build someone else started is hers to join, or to take from the cache
        joined = post(alice, repo, second)
        assert joined.status_code in (200, 202), joined.text
        assert joined.json()["outcome"] in ("joined", "cached")
        assert wait_finished(alice, mine.json()["id"])["state"] == "built"
        assert wait_finished(carol, theirs.json()["id"])["state"] == "built"
        assert post(alice, repo, first).json()["outcome"] == "cached"
        # the BinderHub stream says the same in one failed event
        with alice.stream(
            "GET", f"/build/{git_spec(repo, third)}", params={"build_only": "true"}, headers=SSE
        ) as response:
            assert response.status_code == 200
            events = sse_events(response)
        (event,) = events
        assert event["phase"] == "failed"
        assert event["status_code"] == 429
        assert "quotas.per_user.builds_per_window" in event["message"]
        assert build_ids(alice) == before
        # what alice can see of it
        quotas = alice.get("/api/v1/quotas/me").json()
        assert quotas["requester"] == "user:alice"
        (quota,) = quotas["quotas"]
        assert quota["quota"] == "per_user.builds_per_window"
        assert (quota["limit"], quota["used"], quota["remaining"]) == (1, 1, 0)
        assert quota["frees_at"] == pytest.approx(time.time() + WINDOW, abs=120)
        assert carol.get("/api/v1/quotas/me").json()["quotas"][0]["used"] == 1
        metrics = alice.get("/metrics").text
        refusals = re.search(
            r'binderhub_service_quota_refusals_total\{quota="per_user.builds_per_window"\} (\S+)',
            metrics,
        )
        assert refusals is not None
        assert float(refusals.group(1)) == 2.0

    # a restart of the service keeps the counts: they are in the build records
    service.stop()
    service.start()
    with through_proxy(hub, alice_token) as alice:
        assert_refused(post(alice, repo, third))
        assert alice.get("/api/v1/quotas/me").json()["quotas"][0]["used"] == 1
        assert post(alice, repo, first).json()["outcome"] == "cached"
