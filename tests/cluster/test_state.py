"""Where the chart keeps the state (issue 27), in the real test cluster.

- By default, a SQLite file on a PersistentVolumeClaim of the cluster's default
  StorageClass (here ``bhs-local``, the provisioner of ``k8s/local-volumes.sh``): after a
  ``helm upgrade`` with a changed value and after ``kubectl delete pod``, every earlier
  build and its log are served again, and a redelivered webhook is answered from the
  delivery's record.
- Two replicas on a PostgreSQL in the cluster (Debian's, ``tests/cluster/postgres/``):
  concurrent requests to both pods make one build, which both answer for with the same
  id; a delivery received by one is answered as a duplicate by the other.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from webhook.deliveries import github_signature

from .conftest import NODE_IP
from .enforcement import node_egress
from .test_chart import (
    CHART,
    DOCKER,
    GITHUB_SECRET,
    RELEASE,
    SERVICE,
    ServiceProxy,
    dockerfile,
    free_port,
    node_registry,  # noqa: F401 (a fixture)
    proxy,  # noqa: F401 (a fixture)
    push_delivery,
    run_helm,
    service_image,  # noqa: F401 (a fixture)
    wait_for_build,
)

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_PASSWORD = "state-test-pw"


def deliver(http: httpx.Client, data: dict[str, Any], delivery: str) -> dict[str, Any]:
    body = json.dumps(data).encode()
    response = http.post(
        "/hooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": github_signature(GITHUB_SECRET.encode(), body),
        },
    )
    assert response.status_code in (200, 202), response.text
    answer: dict[str, Any] = response.json()
    return answer


def service_pods(core_v1: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=service"
    pods = core_v1.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def one_new_ready_pod(
    core_v1: client.CoreV1Api, namespace: str, kube: Any, old_uid: Any
) -> client.V1Pod:
    def ready() -> client.V1Pod | None:
        pods = service_pods(core_v1, namespace)
        if len(pods) != 1 or pods[0].metadata.uid == old_uid:
            return None
        statuses = pods[0].status.container_statuses or []
        return pods[0] if statuses and all(s.ready for s in statuses) else None

    pod: client.V1Pod = kube.wait_for(ready, timeout=300, what="a new, ready service pod")
    return pod


def test_the_state_outlives_an_upgrade_and_a_deleted_pod(
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    registry: str,
    git_server: Any,
    service_image: str,  # noqa: F811
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:8]
    repo_name = f"state-{token}.git"
    sha = git_server.create_repo(repo_name, {"Dockerfile": dockerfile(token)})
    repo_url = git_server.url(repo_name)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    values: dict[str, Any] = {  # persistence and its strategy are the chart's defaults
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "hostNetwork": True,  # the registry listens on the node's loopback
        "containerPort": free_port(),
        "imagePrefix": f"{registry}/bhs-state-{token}-",
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "builder": {
            "type": "docker-socket",
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "ttlSecondsAfterFinished": 30,
        },
        "networkPolicy": node_egress(NODE_IP, git_server.port),
        "logFormat": "text",
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))

    def helm_(*args: str) -> str:
        return run_helm(helm, kubeconfig, namespace, *args)

    helm_("install", RELEASE, str(CHART), "-f", str(values_file), "--wait", "--timeout", "5m")
    claim = core_v1.read_namespaced_persistent_volume_claim(SERVICE, namespace)
    assert claim.spec.storage_class_name == "bhs-local"  # the cluster's default, as asked
    assert claim.status.phase == "Bound"
    (pod,) = service_pods(core_v1, namespace)
    kube.wait_for(lambda: proxy.http.get("/health").status_code == 200, 60, "the Service")

    delivery = str(uuid.uuid4())
    answer = deliver(proxy.http, push_delivery(repo_url, sha), delivery)
    assert answer["outcome"] == "accepted", answer
    (build,) = answer["builds"]
    done = wait_for_build(proxy, kube, build["id"])
    assert done["state"] == "built", done.get("error")
    log = proxy.http.get(f"/api/v1/builds/{build['id']}/logs").json()
    assert log["lines"], log
    listed = proxy.http.get("/api/v1/builds").json()

    def still_there() -> None:
        """Everything the first pod answered, answered alike by the pod there now."""
        kube.wait_for(
            lambda: proxy.http.get("/health").status_code == 200, 120, "the new pod's Service"
        )
        assert proxy.http.get(f"/api/v1/builds/{build['id']}").json() == done
        assert proxy.http.get(f"/api/v1/builds/{build['id']}/logs").json() == log
        assert proxy.http.get("/api/v1/builds").json() == listed
        again = deliver(proxy.http, push_delivery(repo_url, sha), delivery)
        assert again == answer | {"duplicate": True}

    # -- an upgrade with a changed value: the pod is replaced, the state stays ---------------
    values["logLevel"] = "debug"
    values_file.write_text(yaml.safe_dump(values))
    helm_("upgrade", RELEASE, str(CHART), "-f", str(values_file), "--wait", "--timeout", "5m")
    upgraded = one_new_ready_pod(core_v1, namespace, kube, pod.metadata.uid)
    still_there()

    # -- the pod deleted (a drained node, a crash) -------------------------------------------
    core_v1.delete_namespaced_pod(str(upgraded.metadata.name), namespace)
    one_new_ready_pod(core_v1, namespace, kube, upgraded.metadata.uid)
    still_there()
    helm_("uninstall", RELEASE, "--wait", "--timeout", "5m")


@pytest.fixture(scope="module")
def postgres_image(base_image: str, load_image: Callable[[str], str]) -> str:
    """Debian's PostgreSQL (tests/cluster/postgres/), built here, tagged by content."""
    subprocess.run(
        [
            DOCKER,
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "-t",
            "local/bhs-postgres:build",
            str(ROOT / "tests" / "cluster" / "postgres"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1200,
    )
    image_id = subprocess.run(
        [DOCKER, "image", "inspect", "-f", "{{.Id}}", "local/bhs-postgres:build"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    image = f"local/bhs-postgres:{image_id.split(':')[-1][:12]}"
    subprocess.run([DOCKER, "tag", "local/bhs-postgres:build", image], check=True)
    return load_image(image)


def start_postgres_in(api_client: client.ApiClient, namespace: str, image: str, kube: Any) -> str:
    """A PostgreSQL Deployment and Service ``pg`` in ``namespace``; its URL for the service."""
    manifests: list[Any] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pg"},
            "stringData": {
                "PASSWORD": POSTGRES_PASSWORD,
                "USERNAME": "binder",
                "DATABASE": "binder",
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "pg"},
            "spec": {
                "selector": {"matchLabels": {"app": "pg"}},
                "template": {
                    "metadata": {"labels": {"app": "pg"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "postgres",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "envFrom": [{"secretRef": {"name": "pg"}}],
                                "ports": [{"containerPort": 5432}],
                                "readinessProbe": {"tcpSocket": {"port": 5432}, "periodSeconds": 1},
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "pg"},
            "spec": {"selector": {"app": "pg"}, "ports": [{"port": 5432}]},
        },
    ]
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    core.create_namespaced_secret(namespace, manifests[0])
    apps.create_namespaced_deployment(namespace, manifests[1])
    core.create_namespaced_service(namespace, manifests[2])
    kube.wait_for(
        lambda: apps.read_namespaced_deployment("pg", namespace).status.ready_replicas == 1,
        timeout=300,
        what="PostgreSQL ready",
    )
    return f"postgresql://binder:{POSTGRES_PASSWORD}@pg.{namespace}.svc:5432/binder"


class PodProxy:
    """HTTP to one pod's port through the API server (client-certificate auth)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, pod: str, port: int) -> None:
        conf = api_client.configuration
        context = ssl.create_default_context(cafile=conf.ssl_ca_cert)
        context.load_cert_chain(conf.cert_file, conf.key_file)
        self.http = httpx.Client(
            base_url=f"{conf.host}/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy",
            verify=context,
            timeout=30,
        )


def test_two_replicas_share_one_postgresql(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: Any,
    node_registry: str,  # noqa: F811
    git_server: Any,
    service_image: str,  # noqa: F811
    builder_image: str,
    postgres_image: str,
    tmp_path: Path,
) -> None:
    url = start_postgres_in(api_client, namespace, postgres_image, kube)
    core_v1.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="bhs-database"),
            data={"database-url": base64.b64encode(url.encode()).decode()},
        ),
    )
    token = uuid.uuid4().hex[:8]
    repo_name = f"state-pg-{token}.git"
    sha = git_server.create_repo(repo_name, {"Dockerfile": dockerfile(token)})
    repo_url = git_server.url(repo_name)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "replicas": 2,
        "database": {"existingSecret": "bhs-database"},
        # pods reach this registry on the node's address: the check and the lookups work;
        # the node's Docker daemon would push there only over TLS, so the build itself fails,
        # which is no matter here: what is asked is one build, known alike by both replicas
        "imagePrefix": f"{node_registry}/bhs-state-pg-{token}-",
        "registry": {"url": f"http://{node_registry}"},
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "builder": {
            "type": "docker-socket",
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "ttlSecondsAfterFinished": 30,
        },
        "networkPolicy": node_egress(NODE_IP, git_server.port),
        "logFormat": "text",
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    run_helm(
        helm,
        kubeconfig,
        namespace,
        "install",
        RELEASE,
        str(CHART),
        "-f",
        str(values_file),
        "--wait",
        "--timeout",
        "5m",
    )
    pods = service_pods(core_v1, namespace)
    assert len(pods) == 2
    assert not core_v1.list_namespaced_persistent_volume_claim(namespace).items
    proxies = [PodProxy(api_client, namespace, str(p.metadata.name), 8080) for p in pods]
    try:
        check_one_build_on_both(proxies, repo_url, sha, kube)
    finally:
        for p in proxies:
            p.http.close()
    run_helm(helm, kubeconfig, namespace, "uninstall", RELEASE, "--wait", "--timeout", "5m")


def check_one_build_on_both(proxies: list[PodProxy], repo_url: str, sha: str, kube: Any) -> None:
    """Concurrent deliveries of pushes of one commit to both replicas (the API server's
    proxy passes no Authorization header on, so the API's writes are out of reach here):
    one build, the same id in every answer, one record listed alike by both; a delivery
    received by one is a duplicate for the other; the build's end and log alike on both."""

    def push(p: PodProxy) -> dict[str, Any]:
        return deliver(p.http, push_delivery(repo_url, sha), str(uuid.uuid4()))

    with ThreadPoolExecutor(6) as pool:
        answers = [a["builds"][0] for a in pool.map(push, proxies * 3)]
    assert len({a["id"] for a in answers}) == 1, answers
    assert [a["outcome"] for a in answers].count("created") == 1, answers
    build_id = answers[0]["id"]
    for p in proxies:
        assert [b["id"] for b in p.http.get("/api/v1/builds").json()["builds"]] == [build_id]
    # (a branch that builds nothing: the answer is recorded whatever the build does by then)
    other = push_delivery(repo_url, sha) | {"ref": "refs/heads/other"}
    delivery = str(uuid.uuid4())
    first = deliver(proxies[0].http, other, delivery)
    assert (first["outcome"], first["duplicate"]) == ("ignored", False), first
    second = deliver(proxies[1].http, other, delivery)
    assert second == first | {"duplicate": True}

    def finished(http: httpx.Client) -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/api/v1/builds/{build_id}").json()
        return body if body["state"] not in ("queued", "running") else None

    ends = [kube.wait_for(lambda h=p.http: finished(h), 600, "the build's end") for p in proxies]
    assert ends[0] == ends[1]
    logs = [p.http.get(f"/api/v1/builds/{build_id}/logs").json() for p in proxies]
    assert logs[0] == logs[1]
