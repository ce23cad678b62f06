"""Readiness that does not cascade, in the real test cluster (issue 20): with the hub
answering slowly and the registry stopped, the chart's service pod stays in its Service's
endpoints, a signed push is accepted and durably queued (its Job waits, suspended, and a
new pod follows it after the old one is deleted), and the build runs once the registry is
back.

The hub is a stand-in (``testkit.slow_server``: it accepts, reads, answers after a minute);
the registry is a real one on the node's loopback that stops and starts on its port. The
service runs with ``hostNetwork`` (it reaches both on 127.0.0.1), builds with the node's
Docker daemon (``builder.type: docker-socket``), and is reached through the API server's
service proxy, as in test_chart.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from testkit.components import Registry, in_registry, start_registry
from testkit.slow_server import SlowServer

from .conftest import NODE_IP
from .enforcement import node_egress
from .test_chart import (  # noqa: F401 - fixtures
    CHART,
    RELEASE,
    SERVICE,
    ServiceProxy,
    dockerfile,
    free_port,
    proxy,
    run_helm,
    send_push,
    service_image,
    wait_for_build,
)

pytestmark = pytest.mark.cluster

GITHUB_SECRET = "chart test github secret"  # test_chart's send_push signs with it
NODE = "bhs-node"


@pytest.fixture
def slow_hub() -> Iterator[SlowServer]:
    hub = SlowServer(delay=60).start()  # far longer than a check may take (2 s)
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def stoppable_registry(tmp_path: Path) -> Iterator[list[Registry]]:
    """A registry on the node's loopback (the node's Docker daemon pushes to it over plain
    HTTP); the test stops it and starts it again on its port (the list's one element)."""
    registries = [start_registry(tmp_path / "registry")]
    try:
        yield registries
    finally:
        registries[0].stop()


def readiness_probes(api_client: client.ApiClient, namespace: str, pod: str) -> int:
    """How many readiness probes the kubelet has run on ``pod`` (its ``/metrics/probes``,
    through the API server's node proxy), whatever their result."""
    core = client.CoreV1Api(api_client)
    text = core.connect_get_node_proxy_with_path(NODE, "metrics/probes")
    total = 0
    for line in str(text).splitlines():
        if (
            line.startswith("prober_probe_total{")
            and f'namespace="{namespace}"' in line
            and f'pod="{pod}"' in line
            and 'probe_type="Readiness"' in line
        ):
            total += int(float(line.rpartition(" ")[2]))
    return total


def ready_endpoints(api_client: client.ApiClient, namespace: str) -> list[str]:
    """The addresses of the Service's endpoints that are ready."""
    discovery = client.DiscoveryV1Api(api_client)
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={SERVICE}"
    ).items
    return [
        address
        for endpoint_slice in slices
        for endpoint in endpoint_slice.endpoints or []
        if endpoint.conditions is not None and endpoint.conditions.ready
        for address in endpoint.addresses
    ]


def service_pod(core: client.CoreV1Api, namespace: str) -> Any:
    """The one live service pod, once it is ready."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=service"
    pods = [
        pod
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items
        if pod.metadata.deletion_timestamp is None
    ]
    if len(pods) != 1:
        return None
    ready = any(c.type == "Ready" and c.status == "True" for c in pods[0].status.conditions or [])
    return pods[0] if ready else None


def test_a_slow_hub_and_a_stopped_registry_leave_the_service_in_its_endpoints(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    kube: Any,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    slow_hub: SlowServer,
    stoppable_registry: list[Registry],
    tmp_path: Path,
) -> None:
    registry = stoppable_registry[0]
    port = int(registry.host.rpartition(":")[2])
    token = uuid.uuid4().hex[:8]
    repo_name = f"degraded-{token}.git"
    sha = git_server.create_repo(repo_name, {"Dockerfile": dockerfile(token)})
    repo_url = git_server.url(repo_name)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "hostNetwork": True,  # the registry and the hub stand-in are on the node's loopback
        "containerPort": free_port(),
        "strategy": {"type": "Recreate"},
        "imagePrefix": f"{registry.host}/bhs-degraded-{token}-",
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "builder": {
            "type": "docker-socket",
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
        },
        "networkPolicy": node_egress(NODE_IP, git_server.port),
        "config": {
            "jupyterhub": {
                "enabled": True,
                "api_url": f"{slow_hub.url}/hub/api",
                "api_token": "a-token-the-stand-in-never-reads",
            }
        },
        "logFormat": "text",
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))

    def readiness() -> dict[str, Any]:
        answer = proxy.http.get("/health/ready")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    # -- the hub is slow from the start: the install still gets a ready pod ----------------
    run_helm(helm, kubeconfig, namespace, "install", RELEASE, str(CHART), "-f", str(values_file),
             "--wait", "--timeout", "5m")  # fmt: skip
    pod = kube.wait_for(lambda: service_pod(core_v1, namespace), timeout=300, what="a ready pod")
    body = kube.wait_for(readiness, timeout=60, what="/health/ready through the Service")
    assert body["status"] == "degraded", body
    assert body["checks"]["jupyterhub"] == {
        **body["checks"]["jupyterhub"],
        "ok": False,
        "error": "jupyterhub did not answer within 2 s",
    }
    assert body["checks"]["registry"]["ok"] is True
    assert slow_hub.requests >= 1

    # -- the registry stops: reported, and the pod stays ready through several probes ------
    registry.stop()
    kube.wait_for(
        lambda: readiness()["checks"]["registry"]["ok"] is False,
        timeout=60,
        what="the registry reported down",
    )
    probes = readiness_probes(api_client, namespace, pod.metadata.name)
    # more probes than the chart's failureThreshold (3) would take to make it unready
    kube.wait_for(
        lambda: readiness_probes(api_client, namespace, pod.metadata.name) >= probes + 4,
        timeout=120,
        what="four more readiness probes",
        interval=2,
    )
    assert service_pod(core_v1, namespace) is not None  # still Ready
    assert pod.status.pod_ip in ready_endpoints(api_client, namespace)
    metrics = proxy.http.get("/metrics").text
    assert 'binderhub_service_dependency_up{dependency="registry"} 0.0' in metrics
    assert 'binderhub_service_dependency_up{dependency="jupyterhub"} 0.0' in metrics

    # -- a push is accepted and its build waits in the cluster's queue ---------------------
    build = send_push(proxy, repo_url, sha)  # 202, accepted

    def suspended_job() -> Any:
        jobs = batch_v1.list_namespaced_job(
            namespace, label_selector="app.kubernetes.io/managed-by=binderhub-service"
        ).items
        return jobs[0] if len(jobs) == 1 and jobs[0].spec.suspend else None

    job = kube.wait_for(suspended_job, timeout=60, what="the build's Job, suspended")
    log = proxy.http.get(f"/api/v1/builds/{build['id']}/logs").text
    assert "handed to the queue, which waits for it" in log, log
    assert proxy.http.get(f"/api/v1/builds/{build['id']}").json()["state"] == "queued"

    # -- durable: the pod goes (its state on an emptyDir with it); the new one follows -----
    core_v1.delete_namespaced_pod(pod.metadata.name, namespace)
    new_pod = kube.wait_for(
        lambda: (
            (p := service_pod(core_v1, namespace)) is not None
            and p.metadata.uid != pod.metadata.uid
            and p
        ),
        timeout=300,
        what="a new ready service pod (hub slow, registry stopped)",
    )
    assert new_pod.metadata.uid != pod.metadata.uid
    kube.wait_for(
        lambda: proxy.http.get(f"/api/v1/builds/{build['id']}").status_code == 200,
        timeout=120,
        what="the new pod to follow the queued build",
    )
    assert suspended_job() is not None
    assert suspended_job().metadata.uid == job.metadata.uid

    # -- the registry is back: the build runs --------------------------------------------
    stoppable_registry[0] = registry = start_registry(tmp_path / "registry", port=port)
    done = wait_for_build(proxy, kube, build["id"])
    assert done["state"] == "built", done.get("error")
    assert in_registry(registry.url, build["image"])
    kube.wait_for(
        lambda: readiness()["checks"]["registry"]["ok"] is True,
        timeout=60,
        what="the registry reported back",
    )
    assert readiness()["status"] == "degraded"  # the hub is still slow

    run_helm(helm, kubeconfig, namespace, "uninstall", RELEASE, "--wait", "--timeout", "5m")
    with contextlib.suppress(Exception):
        slow_hub.stop()
