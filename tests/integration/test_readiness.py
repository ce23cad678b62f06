"""Readiness (``/health/ready``) against real dependencies: a registry that stops and
starts again on its port, a Docker daemon address where nothing answers. Liveness
(``/health``) stays 200 throughout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from jobs.errors import TemporaryError
from jobs.executors.kubernetes import KubernetesExecutor
from jobs.settings import load_settings
from testkit.components import ServiceProcess, free_port, start_registry, wait_until

StartServer = Callable[..., ServiceProcess]
pytestmark = pytest.mark.anyio


def ready_answering(
    client: httpx.Client, status: int, path: str = "/health/ready"
) -> httpx.Response:
    """Ask ``path`` until it answers ``status`` (answers are cached for a second)."""
    answers: list[httpx.Response] = []

    def answered() -> bool:
        answers.append(client.get(path))
        return answers[-1].status_code == status

    wait_until(answered, timeout=30, interval=0.2)
    return answers[-1]


def test_ready_follows_the_registry_down_and_back_without_a_restart(
    tmp_path: Path, start_server: StartServer
) -> None:
    registry = start_registry(tmp_path / "registry")
    try:
        server = start_server(image_prefix=f"{registry.host}/ready-")
        assert server.process is not None
        with server.client(None) as client:
            up = client.get("/health/ready")
            assert up.status_code == 200, up.text
            assert up.json() == {
                "status": "ready",
                "checks": {"docker": {"ok": True}, "registry": {"ok": True}, "store": {"ok": True}},
            }

            registry.stop()
            down = ready_answering(client, 503).json()
            assert down["status"] == "unavailable"
            assert down["checks"]["docker"] == down["checks"]["store"] == {"ok": True}
            assert down["checks"]["registry"]["ok"] is False
            assert down["checks"]["registry"]["error"].startswith(
                f"registry {registry.url} could not be reached: "
            ), down
            assert client.get("/health").json() == {"status": "ok"}

            port = int(registry.host.rpartition(":")[2])
            registry = start_registry(tmp_path / "registry", port=port)
            again = ready_answering(client, 200).json()
            assert again["status"] == "ready"
        assert server.process.poll() is None  # the same process all along
    finally:
        registry.stop()


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
            assert answer.status_code == 503, answer.text
            body = answer.json()
            hub = body["checks"].pop("jupyterhub")
            assert body == {
                "status": "unavailable",
                "checks": {
                    "docker": {
                        "ok": False,
                        "error": f"the Docker daemon at unix://{socket} is not answering: "
                        "[Errno 2] No such file or directory",
                    },
                    "registry": {"ok": True},
                    "store": {"ok": True},
                },
            }
            assert hub["ok"] is False
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
