"""docs/walkthrough.md, end to end, in the test cluster (issue #14).

The real zero-to-jupyterhub 4.4.0 chart (vendored; its images built here) in namespace
``jhub`` with ``docs/walkthrough/jhub-values.yaml`` and the hub snippet
``docs/hub-extra-config.py``, and this chart in ``binder`` with
``docs/walkthrough/binder-values.yaml``: the files the walkthrough includes, as they are,
each followed by a small file of test-environment values (see ``walkthrough.py``). The
registry asks for credentials and answers as Docker Hub does (token auth, 401 for a
repository that does not exist yet); the node pulls from it with z2jh's image pull secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.token_registry import start_token_registry

from . import walkthrough as w
from .conftest import Helpers

pytestmark = pytest.mark.cluster

CREDENTIALS = ("walkthrough-builder", secrets.token_hex(8))


@pytest.fixture(scope="module")
def images(kubeconfig: str) -> dict[str, str]:
    return w.z2jh_images()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, node_ip: str) -> Iterator[str]:
    """The Docker-Hub-like registry, at ``node_ip:port`` for pods and the node's containerd
    (plain HTTP); its token service at the node's address too."""
    reg, tokens = start_token_registry(
        tmp_path_factory.mktemp("walkthrough-registry"),
        CREDENTIALS,
        hide_missing=True,
        token_host=node_ip,
        listen="0.0.0.0",  # noqa: S104 - pods reach it at the node's address
    )
    port = reg.host.rsplit(":", 1)[1]
    try:
        with w.plain_http_for_node(f"{node_ip}:{port}"):
            yield port
    finally:
        reg.stop()
        tokens.stop()


@pytest.fixture(scope="module")
def singleuser_base(
    images: dict[str, str], registry: str, node_ip: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The single-user base image, pushed to the registry: the name pods and builds use."""
    name = "jupyter-singleuser:" + images["singleuser"].rpartition(":")[2]
    w.docker_push(
        images["singleuser"],
        f"127.0.0.1:{registry}/{name}",
        CREDENTIALS,
        tmp_path_factory.mktemp("docker-config"),
    )
    return f"{node_ip}:{registry}/{name}"


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    return {name: secrets.token_hex(32) for name in ("hub-service", "e2e", "webhook")}


@pytest.fixture(scope="module")
def hub(
    helm: str,
    kubeconfig: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    images: dict[str, str],
    registry: str,
    node_ip: str,
    singleuser_base: str,
    tokens: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[w.Hub]:
    """z2jh installed as the walkthrough says, its default image the single-user base."""
    for ns in (w.HUB_NS, w.BINDER_NS):
        w.recreate_namespace(core_v1, ns)
    tmp = tmp_path_factory.mktemp("jhub")
    homes = tmp / "homes"
    homes.mkdir()
    w.home_volume(core_v1, homes, "homes")
    overrides = w.jhub_test_values(
        images, singleuser_base, f"{node_ip}:{registry}", CREDENTIALS, tokens, "homes"
    )
    w.helm_install(
        helm,
        kubeconfig,
        "jhub",
        w.Z2JH_CHART,
        w.HUB_NS,
        "--values",
        str(w.JHUB_VALUES),
        "--values",
        str(w.write_values(tmp / "jhub-test-values.yaml", overrides)),
        "--set-file",
        f"hub.extraConfig.binderhub-service={w.HUB_SNIPPET}",
    )
    h = w.Hub.connect(api_client, tokens["e2e"], homes)
    try:
        yield h
    finally:
        h.close()


def start_server(hub: w.Hub, kube: type[Helpers], user: str, options: dict[str, Any]) -> None:
    hub.user_token(user)  # creates the user
    response = hub.request("POST", f"/hub/api/users/{user}/server", json=options)
    assert response.status_code in (201, 202), response.text
    kube.wait_for(lambda: hub.server_ready(user), timeout=600, what=f"{user}'s server", interval=2)


def user_pod(core_v1: client.CoreV1Api, user: str) -> client.V1Pod:
    (pod,) = core_v1.list_namespaced_pod(
        w.HUB_NS, label_selector=f"component=singleuser-server,hub.jupyter.org/username={user}"
    ).items
    return pod


def test_a_user_server_starts_from_a_prebuilt_image_with_its_home_volume(
    hub: w.Hub, core_v1: client.CoreV1Api, kube: type[Helpers], singleuser_base: str
) -> None:
    user = "prebuilt"
    start_server(hub, kube, user, {})
    token = hub.user_token(user)
    # the server answers through the hub's proxy
    answer = hub.request("GET", f"/user/{user}/api", token=token)
    assert answer.status_code == 200, answer.text
    assert "version" in answer.json()
    pod = user_pod(core_v1, user)
    (container,) = pod.spec.containers
    assert container.image == singleuser_base  # pulled from the registry with credentials
    (home,) = [m for m in container.volume_mounts if m.mount_path == "/home/jovyan"]
    assert (home.name, home.sub_path) == ("home", user)
    # what the server writes in its home lands on the volume
    written = hub.request(
        "PUT",
        f"/user/{user}/api/contents/hello.txt",
        token=token,
        json={"type": "file", "format": "text", "content": "hello"},
    )
    assert written.status_code in (200, 201), written.text
    assert (hub.homes / user / "hello.txt").read_text() == "hello"
    hub.api("DELETE", f"users/{user}/server")
