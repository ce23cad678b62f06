"""Readiness (``/health/ready``) against real dependencies: a registry that stops and
starts again on its port, a Docker daemon address where nothing answers, a hub that
never answers. Each is reported as degraded (in the answer, on /metrics, once in the
log) while the pod stays ready (200), and the answer never waits for a check. Liveness
(``/health``) stays 200 throughout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from jobs.errors import TemporaryError
from jobs.executors.kubernetes.executor import KubernetesExecutor
from jobs.settings import load_settings
from testkit.components import ServiceProcess, free_port, start_registry, wait_until
from testkit.slow_server import SlowServer

StartServer = Callable[..., ServiceProcess]
pytestmark = pytest.mark.anyio


def ready_saying(client: httpx.Client, status: str, path: str = "/health/ready") -> dict[str, Any]:
    """Ask ``path`` until its answer's ``status`` is ``status`` (the checks run in the
    background, every few seconds); every answer on the way is 200."""
    answers: list[httpx.Response] = []

    def answered() -> bool:
        answers.append(client.get(path))
        assert answers[-1].status_code == 200, answers[-1].text
        return bool(answers[-1].json()["status"] == status)

    wait_until(answered, timeout=60, interval=0.2)
    body: dict[str, Any] = answers[-1].json()
    return body


def oks(body: dict[str, Any]) -> dict[str, bool]:
    return {name: check["ok"] for name, check in body["checks"].items()}


def gauge(client: httpx.Client, dependency: str) -> float:
    (line,) = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(f'binderhub_service_dependency_up{{dependency="{dependency}"}}')
    ]
    return float(line.rpartition(" ")[2])


def test_a_registry_that_is_down_degrades_the_answer_and_the_pod_stays_ready(
    tmp_path: Path, start_server: StartServer
) -> None:
    registry = start_registry(tmp_path / "registry")
    try:
        server = start_server(image_prefix=f"{registry.host}/ready-")
        assert server.process is not None
        with server.client(None) as client:
            up = client.get("/health/ready")
            assert up.status_code == 200, up.text
            assert up.json()["status"] == "ready"
            assert oks(up.json()) == {"docker": True, "registry": True, "store": True}
            assert gauge(client, "registry") == 1

            registry.stop()
            down = ready_saying(client, "degraded")
            assert oks(down) == {"docker": True, "registry": False, "store": True}
            assert down["checks"]["registry"]["error"].startswith(
                f"registry {registry.url} could not be reached: "
            ), down
            assert gauge(client, "registry") == 0
            assert client.get("/health").json() == {"status": "ok"}
            # checked again twice more while down: still one line in the log
            first = down["checks"]["registry"]
            wait_until(
                lambda: (
                    client.get("/health/ready").json()["checks"]["registry"]["checked_at"]
                    > first["checked_at"] + 1.5 * 5
                ),  # readiness.CHECK_INTERVAL_SECONDS
                timeout=60,
                interval=0.5,
            )
            assert (
                client.get("/health/ready").json()["checks"]["registry"]["since"]
                == (first["since"])
            )
            assert server.log().count("registry does not answer (degraded)") == 1

            port = int(registry.host.rpartition(":")[2])
            registry = start_registry(tmp_path / "registry", port=port)
            again = ready_saying(client, "ready")
            assert again["checks"]["registry"]["since"] > first["since"]
            assert gauge(client, "registry") == 1
            assert server.log().count("registry answers again, after") == 1
        assert server.process.poll() is None  # the same process all along
    finally:
        registry.stop()


def test_a_hub_that_never_answers_is_reported_without_slowing_the_probe(
    start_server: StartServer,
) -> None:
    hub = SlowServer().start()  # accepts, reads, never answers
    try:
        server = start_server(
            jupyterhub={
                "enabled": True,
                "api_url": f"{hub.url}/hub/api",
                "api_token": "service-token",
            },
        )
        with server.client(None) as client:
            for _ in range(30):  # probes, as often as they come
                answer = client.get("/health/ready")
                assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["status"] == "degraded"
            assert body["checks"]["jupyterhub"]["error"] == "jupyterhub did not answer within 2 s"
            assert oks(body) == {
                "docker": True,
                "jupyterhub": False,
                "registry": True,
                "store": True,
            }
            # the probes asked the hub nothing: the checks run on their own schedule
            assert hub.requests < 10, hub.requests
    finally:
        hub.stop()


def test_ready_names_a_docker_daemon_and_a_hub_that_do_not_answer(
    tmp_path: Path, start_server: StartServer
) -> None:
    socket = tmp_path / "no-daemon-here.sock"
    hub_api = f"http://127.0.0.1:{free_port()}/hub/api"
    server = start_server(
        # probes reach the pod directly: the routes answer at the root under a base path too
        base_path="/services/binder/",
        jupyterhub={"enabled": True, "api_url": hub_api, "api_token": "service-token"},
        env={"DOCKER_HOST": f"unix://{socket}"},
    )
    with server.client(None) as client:
        for path in ("/health/ready", "/services/binder/health/ready"):
            answer = client.get(path)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["status"] == "degraded"
            assert oks(body) == {
                "docker": False,
                "jupyterhub": False,
                "registry": True,
                "store": True,
            }
            assert body["checks"]["docker"]["error"] == (
                f"the Docker daemon at unix://{socket} is not answering: "
                "[Errno 2] No such file or directory"
            )
            hub = body["checks"]["jupyterhub"]
            assert hub["error"].startswith(f"JupyterHub's API at {hub_api}/ could not be reached")
        for path in ("/health", "/services/binder/health"):
            assert client.get(path).json() == {"status": "ok"}


async def test_the_kubernetes_executor_names_an_api_server_that_does_not_answer(
    tmp_path: Path,
) -> None:
    # the executor's check through the real client, at an address where nothing listens
    # (tests/cluster has the real API server; this machine's tests may not use it)
    server = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(
        None,
        executor="kubernetes",
        image_prefix="127.0.0.1:5000/ready-",
        state_path=tmp_path / "builds.sqlite",
        kubernetes={"namespace": "builds"},
    )
    executor = KubernetesExecutor(settings, api=client.ApiClient(client.Configuration(host=server)))
    try:
        with pytest.raises(TemporaryError) as raised:
            await executor.check()
    finally:
        await executor.close()
    assert str(raised.value).startswith(
        f"the Kubernetes API server at {server} is not answering: "
    ), raised.value
    assert "Connection refused" in str(raised.value)


def test_a_base_path_without_its_trailing_slash_serves_under_it(start_server: StartServer) -> None:
    server = start_server(base_path="/services/binder")
    with server.client(None) as client:
        assert client.get("/services/binder/health").json() == {"status": "ok"}
