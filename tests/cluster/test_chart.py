"""The Helm chart installed into the real test cluster: a signed GitHub push to the in-cluster
service ends as an image in the node's registry, built by a Job with the nodes' Docker
daemon; an upgrade with changed settings rolls the pod and keeps building; an uninstall
leaves nothing behind. The docker-in-docker builder builds with its own daemon.

This cluster has no cluster DNS and the registry listens on the node's loopback, so the
service runs with ``hostNetwork`` (on a free port) and is reached through the API server's
service proxy, as any client outside the cluster with a kubeconfig would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from testkit.components import in_registry
from tests.conftest import WEBHOOK_FIXTURES
from webhook.deliveries import github_signature

from .conftest import NODE_IP
from .enforcement import node_egress, port_of
from .releases import Release

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "chart"
DOCKER = "/usr/bin/docker"
RELEASE = "bhs"
SERVICE = f"{RELEASE}-binderhub-service"
GITHUB_SECRET = "chart test github secret"
# objects every namespace has; anything else left after an uninstall is a leak
NAMESPACE_DEFAULTS = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


@pytest.fixture(scope="module")
def service_image(release: Release, load_image: Callable[[str], str]) -> str:
    """The released service image (make release of this checkout), also put into the
    node's containerd (the tests run it with ``pullPolicy: Never``)."""
    return load_image(release.service_image)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 - the service listens on every address
        port: int = s.getsockname()[1]
        return port


class ServiceProxy:
    """HTTP to the in-cluster Service through the API server (client-certificate auth)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, service: str) -> None:
        conf = api_client.configuration
        context = ssl.create_default_context(cafile=conf.ssl_ca_cert)
        context.load_cert_chain(conf.cert_file, conf.key_file)
        base = f"{conf.host}/api/v1/namespaces/{namespace}/services/{service}:http/proxy"
        self.http = httpx.Client(base_url=base, verify=context, timeout=30)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def proxy(api_client: client.ApiClient, namespace: str) -> Iterator[ServiceProxy]:
    p = ServiceProxy(api_client, namespace, SERVICE)
    try:
        yield p
    finally:
        p.close()


def push_delivery(repo_url: str, sha: str) -> dict[str, Any]:
    """The recorded GitHub push, rewritten to a repository on the node's git daemon."""
    data: dict[str, Any] = json.loads(
        (WEBHOOK_FIXTURES / "github-push-branch-update.json").read_text()
    )
    repository = data["repository"]
    for field in ("clone_url", "html_url", "ssh_url", "git_url", "svn_url", "url"):
        repository[field] = repo_url
    repository["default_branch"] = "main"
    data["ref"] = "refs/heads/main"
    data["after"] = sha
    if data.get("head_commit"):
        data["head_commit"]["id"] = sha
    return data


def send_push(proxy: ServiceProxy, repo_url: str, sha: str) -> dict[str, Any]:
    body = json.dumps(push_delivery(repo_url, sha)).encode()
    response = proxy.http.post(
        "/hooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": github_signature(GITHUB_SECRET.encode(), body),
        },
    )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    assert answer["outcome"] == "accepted", answer
    (build,) = answer["builds"]
    assert build["sha"] == sha
    return dict(build)


def wait_for_build(proxy: ServiceProxy, kube: Any, build_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        response = proxy.http.get(f"/api/v1/builds/{build_id}")
        assert response.status_code == 200, response.text
        build: dict[str, Any] = response.json()
        return build if build["state"] in ("built", "failed", "cancelled") else None

    result: dict[str, Any] = kube.wait_for(
        finished, timeout=600, what=f"build {build_id}", interval=2
    )
    return result


def commit(git_server: Any, name: str, files: dict[str, str]) -> str:
    """A new commit on main of the bare repository NAME; returns its SHA."""
    bare = git_server.base / name
    env_args = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["git", "clone", "-q", str(bare), work], check=True)
        for rel, content in files.items():
            Path(work, rel).write_text(content)
        subprocess.run(["git", "-C", work, "add", "-A"], check=True)
        subprocess.run(["git", "-C", work, *env_args, "commit", "-q", "-m", "change"], check=True)
        subprocess.run(["git", "-C", work, "push", "-q", "origin", "HEAD:main"], check=True)
        return subprocess.run(
            ["git", "-C", work, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()


def dockerfile(token: str) -> str:
    # builds offline: FROM the local base image, which the node's Docker daemon has
    return f"FROM local/debian:bookworm\nARG NB_USER\nARG NB_UID\nLABEL bhs-chart-test={token}\n"


def run_helm(helm: str, kubeconfig: str, namespace: str, *args: str) -> str:
    cmd = [helm, "--kubeconfig", kubeconfig, "--namespace", namespace, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def leftovers(api_client: client.ApiClient, namespace: str) -> list[tuple[str, str]]:
    """Every object of the kinds the chart and the service make, still in the namespace."""
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    batch = client.BatchV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    coordination = client.CoordinationV1Api(api_client)
    networking = client.NetworkingV1Api(api_client)
    policy = client.PolicyV1Api(api_client)
    listers: dict[str, Callable[[str], Any]] = {
        "ConfigMap": core.list_namespaced_config_map,
        "Secret": core.list_namespaced_secret,
        "ServiceAccount": core.list_namespaced_service_account,
        "Service": core.list_namespaced_service,
        "Pod": core.list_namespaced_pod,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim,
        "Deployment": apps.list_namespaced_deployment,
        "ReplicaSet": apps.list_namespaced_replica_set,
        "DaemonSet": apps.list_namespaced_daemon_set,
        "Job": batch.list_namespaced_job,
        "Role": rbac.list_namespaced_role,
        "RoleBinding": rbac.list_namespaced_role_binding,
        "Lease": coordination.list_namespaced_lease,
        "NetworkPolicy": networking.list_namespaced_network_policy,
        "Ingress": networking.list_namespaced_ingress,
        "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget,
    }
    found = []
    for kind, lister in listers.items():
        for item in lister(namespace).items:
            if (kind, item.metadata.name) not in NAMESPACE_DEFAULTS:
                found.append((kind, item.metadata.name))
    return sorted(found)


def test_install_build_upgrade_uninstall(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    kube: Any,
    registry: str,
    git_server: Any,
    service_image: str,
    builder_image: str,
    proxy: ServiceProxy,
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:8]
    repo_name = f"chart-{token}.git"
    first_sha = git_server.create_repo(repo_name, {"Dockerfile": dockerfile(token)})
    repo_url = git_server.url(repo_name)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        # the registry listens on the node's loopback: only the node's network reaches it
        "hostNetwork": True,
        "containerPort": free_port(),
        "strategy": {"type": "Recreate"},
        "imagePrefix": f"{registry}/bhs-chart-{token}-",
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "builder": {
            "type": "docker-socket",
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            # long enough to look at the Job after its build, short for the uninstall
            "ttlSecondsAfterFinished": 30,
        },
        # build pods clone from the node's git daemon (a private address)
        "networkPolicy": node_egress(NODE_IP, git_server.port),
        "logFormat": "text",
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))

    def helm_(*args: str) -> str:
        return run_helm(helm, kubeconfig, namespace, *args)

    def service_pods() -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=service"
        pods: list[client.V1Pod] = core_v1.list_namespaced_pod(
            namespace, label_selector=selector
        ).items
        return pods

    def build_and_find_image(sha: str) -> None:
        build = send_push(proxy, repo_url, sha)
        done = wait_for_build(proxy, kube, build["id"])
        assert done["state"] == "built", done.get("error")
        assert in_registry(f"http://{registry}", build["image"])
        assert build["image"].startswith(f"{registry}/bhs-chart-{token}-")
        assert build["image"].endswith(f":{sha}")

    # -- install, ready, a push builds ------------------------------------------------------
    notes = helm_(
        "install", RELEASE, str(CHART), "-f", str(values_file), "--wait", "--timeout", "5m"
    )
    assert "/hooks/github" in notes
    (pod,) = service_pods()
    assert pod.status.phase == "Running"
    assert all(c.ready for c in pod.status.container_statuses)
    # the Service's endpoints follow the pod's readiness a moment later
    health = kube.wait_for(
        lambda: (r := proxy.http.get("/health")).status_code == 200 and r,
        timeout=60,
        what="/health through the Service",
    )
    assert health.json() == {"status": "ok"}
    build_and_find_image(first_sha)
    jobs = batch_v1.list_namespaced_job(namespace).items
    assert jobs, "the build ran as a Job"
    job_pod = jobs[0].spec.template.spec
    assert job_pod.service_account_name == f"{SERVICE}-build"

    # -- upgrade with changed settings: the pod is replaced and builds go on ---------------
    values["logLevel"] = "debug"
    values["config"] = {"ref_cache_seconds": 5}
    values_file.write_text(yaml.safe_dump(values))
    helm_("upgrade", RELEASE, str(CHART), "-f", str(values_file), "--wait", "--timeout", "5m")
    kube.wait_for(
        lambda: [p.metadata.uid for p in service_pods()] not in ([pod.metadata.uid], []),
        timeout=300,
        what="the service pod to be replaced",
    )
    (new_pod,) = kube.wait_for(
        lambda: (
            [p for p in service_pods() if p.metadata.deletion_timestamp is None]
            if len(service_pods()) == 1
            else None
        ),
        timeout=300,
        what="one service pod",
    )
    assert new_pod.metadata.uid != pod.metadata.uid
    settings = yaml.safe_load(
        core_v1.read_namespaced_config_map(SERVICE, namespace).data["config.yaml"]
    )
    assert (settings["log_level"], settings["ref_cache_seconds"]) == ("debug", 5)
    second_sha = commit(git_server, repo_name, {"README.md": "changed\n"})
    build_and_find_image(second_sha)

    # -- uninstall: nothing is left once the finished Jobs' TTL has passed -----------------
    helm_("uninstall", RELEASE, "--wait", "--timeout", "5m")
    with contextlib.suppress(TimeoutError):  # the assertion below names what is left
        kube.wait_for(
            lambda: not leftovers(api_client, namespace),
            timeout=300,
            what="the namespace to be empty",
            interval=2,
        )
    assert leftovers(api_client, namespace) == []


DIND_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        docker.io iptables ca-certificates \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture(scope="module")
def dind_image(base_image: str, load_image: Callable[[str], str]) -> str:
    """A docker-in-docker image (Debian's dockerd), as no docker:dind can be pulled here."""
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(DIND_DOCKERFILE.format(base=base_image))
        subprocess.run(
            [DOCKER, "build", "-q", "-t", "local/bhs-dind:build", ctx],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=1200,
        )
    image_id = subprocess.run(
        [DOCKER, "image", "inspect", "-f", "{{.Id}}", "local/bhs-dind:build"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    image = f"local/bhs-dind:{image_id.split(':')[-1][:12]}"
    subprocess.run([DOCKER, "tag", "local/bhs-dind:build", image], check=True)
    return load_image(image)


@pytest.fixture
def node_registry(node_ip: str, kube: Any, tmp_path: Path) -> Iterator[str]:
    """A registry on the node IP, where pods (the dind daemon among them) reach it."""
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path}/registry\n"
        f"http:\n  addr: {node_ip}:{port}\n"
    )
    with open(tmp_path / "registry.log", "w") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    host = f"{node_ip}:{port}"
    try:
        kube.wait_for(
            lambda: proc.poll() is not None or in_registry_answers(host),
            timeout=30,
            what="the registry on the node IP",
        )
        assert proc.poll() is None, (tmp_path / "registry.log").read_text()
        yield host
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def in_registry_answers(host: str) -> bool:
    try:
        return httpx.get(f"http://{host}/v2/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_dind_builder_builds_with_its_own_daemon(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    kube: Any,
    node_registry: str,
    git_server: Any,
    service_image: str,
    builder_image: str,
    dind_image: str,
    proxy: ServiceProxy,
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:8]
    repo_name = f"chart-dind-{token}.git"
    # the release's daemon starts empty and pulls nothing here: an image from scratch
    sha = git_server.create_repo(
        repo_name,
        {
            "Dockerfile": "FROM scratch\nARG NB_USER\nARG NB_UID\nCOPY hello.txt /hello.txt\n",
            "hello.txt": f"{token}\n",
        },
    )
    repo_url = git_server.url(repo_name)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    dind_repository, _, dind_tag = dind_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{node_registry}/bhs-dind-{token}-",
        "registry": {"url": f"http://{node_registry}"},
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "builder": {
            "type": "dind",
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "ttlSecondsAfterFinished": 5,
            "dind": {
                "image": {"repository": dind_repository, "tag": dind_tag, "pullPolicy": "Never"},
                "extraArgs": [f"--insecure-registry={node_registry}"],
            },
        },
        "networkPolicy": node_egress(NODE_IP, git_server.port, port_of(node_registry)),
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

    build = send_push(proxy, repo_url, sha)
    done = wait_for_build(proxy, kube, build["id"])
    assert done["state"] == "built", done.get("error")
    assert build["image"].startswith(f"{node_registry}/bhs-dind-{token}-")
    assert in_registry(f"http://{node_registry}", build["image"])
    # the build used this release's daemon, not the node's: the node's has no such image
    # (nor could it push there: it does not know the registry as a plain-HTTP one)
    inspect = subprocess.run([DOCKER, "image", "inspect", build["image"]], capture_output=True)
    assert inspect.returncode != 0
    run_helm(helm, kubeconfig, namespace, "uninstall", RELEASE, "--wait", "--timeout", "5m")
    with contextlib.suppress(TimeoutError):
        kube.wait_for(
            lambda: not leftovers(api_client, namespace),
            timeout=300,
            what="the namespace to be empty",
            interval=2,
        )
    assert leftovers(api_client, namespace) == []
