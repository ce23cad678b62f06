"""The chart's BuildKit builder (``builder.type: buildkit``) in the real test cluster.

A signed push makes a build Job whose pod runs repo2docker 2026.4 with no Docker daemon,
no hostPath and no privilege; it sends the build over mTLS to the release's buildkitd
(the one privileged pod), which pulls ``FROM`` from a registry on the node (the local
Debian base pushed there first), pushes the image and the registry layer cache. Then
the failures that are not the commit's: a client certificate the daemon refuses, a
daemon that cannot be reached: the service reports it (``/health/ready``) and the build
waits in the queue, its Job suspended, until the daemon is back (issue 20).

Images: the released service and builder images (``make release``, releases.py) and the
chart's default daemon image, ``docker.io/moby/buildkit`` (its stand-in on the node).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from jobs.executors.kubernetes.manifests import LABEL_BUILD_ID
from testkit.components import in_registry

from .conftest import NODE_IP
from .enforcement import node_egress, port_of
from .test_chart import (  # noqa: F401 - fixtures
    CHART,
    RELEASE,
    SERVICE,
    ServiceProxy,
    commit,
    proxy,
    run_helm,
    send_push,
    service_image,
    wait_for_build,
)

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"
GITHUB_SECRET = "chart test github secret"  # test_chart's send_push signs with it


@pytest.fixture(scope="module")
def buildkit_image(upstream_buildkit: str) -> str:
    return upstream_buildkit


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 - the registry listens on every address
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_registry(node_ip: str, base_image: str, kube: Any) -> Iterator[str]:
    """A registry on every address of the node: pods (buildkitd) reach it at the node IP,
    the Docker daemon pushes the Debian base to it at 127.0.0.1 (plain HTTP there).
    Yields ``<node IP>:<port>``; the base is ``<that>/debian:bookworm``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "registry.yml")
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
            f"http:\n  addr: 0.0.0.0:{port}\n"
        )
        with open(Path(tmp, "registry.log"), "w") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            kube.wait_for(
                lambda: proc.poll() is not None or _answers(f"127.0.0.1:{port}"),
                timeout=30,
                what="the registry",
            )
            assert proc.poll() is None, Path(tmp, "registry.log").read_text()
            local = f"127.0.0.1:{port}/debian:bookworm"
            subprocess.run([DOCKER, "tag", base_image, local], check=True)
            subprocess.run([DOCKER, "push", local], check=True, capture_output=True, timeout=600)
            yield f"{node_ip}:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _answers(host: str) -> bool:
    try:
        return httpx.get(f"http://{host}/v2/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def build_pods_and_jobs(api_client: client.ApiClient, namespace: str) -> list[Any]:
    batch = client.BatchV1Api(api_client)
    return list(
        batch.list_namespaced_job(
            namespace, label_selector="app.kubernetes.io/managed-by=binderhub-service"
        ).items
    )


def jobs_of_build(api_client: client.ApiClient, namespace: str, build_id: str) -> list[Any]:
    batch = client.BatchV1Api(api_client)
    selector = f"{LABEL_BUILD_ID}={build_id}"
    return list(batch.list_namespaced_job(namespace, label_selector=selector).items)


def assert_no_host_path_and_no_privilege(job: Any) -> None:
    spec = job.spec.template.spec
    assert all(volume.host_path is None for volume in spec.volumes or [])
    for container in (spec.init_containers or []) + spec.containers:
        context = container.security_context
        assert context is not None, container.name
        assert context.privileged is False, container.name
        assert context.allow_privilege_escalation is False, container.name
    assert spec.security_context.run_as_non_root is True


def wrong_client_secret(core: client.CoreV1Api, namespace: str, name: str, tmp: Path) -> None:
    """A client certificate of a CA the daemon does not know (the daemon's CA kept, so
    the client trusts the daemon and only the daemon can refuse)."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=stranger", "-keyout", str(tmp / "key.pem")),
            *("-out", str(tmp / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    real = core.read_namespaced_secret(f"{SERVICE}-buildkit-client", namespace).data
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={
                "ca.pem": real["ca.pem"],
                "cert.pem": _b64(tmp / "cert.pem"),
                "key.pem": _b64(tmp / "key.pem"),
            },
        ),
    )


def _b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def test_buildkit_builder_builds_without_docker_on_the_node_and_names_its_failures(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    kube: Any,
    base_registry: str,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    buildkit_image: str,
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:8]
    repo_name = f"chart-buildkit-{token}.git"
    sha = git_server.create_repo(
        repo_name,
        {
            "Dockerfile": f"FROM {base_registry}/debian:bookworm\nARG NB_USER\nARG NB_UID\n"
            f"RUN echo environment-{token} > /environment.txt\nCOPY hello.txt /hello.txt\n",
            "hello.txt": f"{token}\n",
        },
    )
    repo_url = git_server.url(repo_name)
    prefix = f"{base_registry}/bhs-bk-{token}-"
    repository, _, tag = service_image.rpartition(":")
    builder_repository, _, builder_tag = builder_image.rpartition(":")
    buildkit_repository, _, buildkit_tag = buildkit_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": prefix,
        "registry": {"url": f"http://{base_registry}"},
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "builder": {
            "type": "buildkit",
            "image": {"repository": builder_repository, "tag": builder_tag, "pullPolicy": "Never"},
            "buildkit": {
                "image": {
                    "repository": buildkit_repository,
                    "tag": buildkit_tag,
                    "pullPolicy": "Never",
                },
                "insecureRegistries": [base_registry],
            },
        },
        # the git daemon and the registry are on the node's (private) address
        "networkPolicy": node_egress(NODE_IP, git_server.port, port_of(base_registry)),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))

    core = client.CoreV1Api(api_client)

    def service_pods() -> list[Any]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=service"
        return list(core.list_namespaced_pod(namespace, label_selector=selector).items)

    def helm_apply(command: str, config: dict[str, Any] | None = None) -> None:
        before = {pod.metadata.uid for pod in service_pods()}
        extra = ["--set-json", f"config={json.dumps(config or {})}"]
        run_helm(helm, kubeconfig, namespace, command, RELEASE, str(CHART), "-f",
                 str(values_file), *extra, "--wait", "--timeout", "5m")  # fmt: skip

        # --wait does not wait for the old pod to go: until it has, it may take a push
        def rolled() -> bool:
            pods = service_pods()
            if len(pods) != 1 or pods[0].metadata.uid in before:
                return False
            statuses = pods[0].status.container_statuses or []
            return bool(statuses) and all(c.ready for c in statuses)

        kube.wait_for(rolled, timeout=300, what="the service pod to be replaced", interval=1)

    def scale_buildkitd(replicas: int) -> None:
        apps = client.AppsV1Api(api_client)
        name = f"{SERVICE}-buildkit"
        apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=buildkit"

        def settled() -> bool:
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            ready = [
                pod
                for pod in pods
                if any(
                    c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
                )
            ]
            return len(pods) == replicas and len(ready) == replicas

        kube.wait_for(settled, timeout=300, what=f"{replicas} buildkitd pods", interval=1)

    helm_apply("install")
    # the service may have checked before the daemon was ready (helm --wait waits for both,
    # not in order); its readiness follows within a check's interval
    kube.wait_for(
        lambda: proxy.http.get("/health/ready").json()["checks"]["buildkit"]["ok"] is True,
        timeout=60,
        what="the service to see the BuildKit daemon ready",
        interval=1,
    )
    build = send_push(proxy, repo_url, sha)
    done = wait_for_build(proxy, kube, build["id"])
    assert done["state"] == "built", done.get("error")
    assert in_registry(f"http://{base_registry}", build["image"])
    # the registry layer cache sits next to the images (jobs/repo2docker/command.py cache_ref)
    assert in_registry(f"http://{base_registry}", build["image"].rpartition(":")[0] + ":buildcache")
    (job,) = build_pods_and_jobs(api_client, namespace)
    assert_no_host_path_and_no_privilege(job)
    log = proxy.http.get(f"/api/v1/builds/{build['id']}/logs").text
    assert f"environment-{token}" in log  # BuildKit's plain progress of the RUN step

    # a client certificate the daemon refuses: named, and not the commit's failure
    wrong_client_secret(core, namespace, "stranger", tmp_path)
    second = commit(git_server, repo_name, {"hello.txt": f"{token} again\n"})
    helm_apply("upgrade", {"kubernetes": {"buildkit_tls_secret": "stranger"}})
    refused = wait_for_build(proxy, kube, send_push(proxy, repo_url, second)["id"])
    assert refused["state"] == "failed"
    assert "certificate" in refused["error"], refused["error"]
    (refused_job,) = jobs_of_build(api_client, namespace, refused["id"])  # finished, kept

    # the daemon down (its Deployment scaled to 0, the Service without endpoints): reported
    # as degraded, and a build waits in the queue, its Job suspended, until it is back
    helm_apply("upgrade")
    scale_buildkitd(0)

    def buildkit_check() -> dict[str, Any]:
        answer = proxy.http.get("/health/ready")
        assert answer.status_code == 200, answer.text  # the pod stays ready
        check: dict[str, Any] = answer.json()["checks"]["buildkit"]
        return check

    kube.wait_for(lambda: not buildkit_check()["ok"], timeout=60, what="BuildKit reported down")
    assert buildkit_check()["error"].startswith(f"the BuildKit daemon at tcp://{SERVICE}-buildkit.")
    waiting = send_push(proxy, repo_url, second)
    assert waiting["id"] != refused["id"]  # the refusal was not remembered
    (pod,) = service_pods()

    def keeper_holds() -> bool:
        log = core.read_namespaced_pod_log(pod.metadata.name, namespace)
        return "queue keeper: builds wait in the queue until this answers: the BuildKit" in log

    kube.wait_for(keeper_holds, timeout=120, what="the queue keeper to hold the build")
    (waiting_job,) = jobs_of_build(api_client, namespace, waiting["id"])
    assert waiting_job.spec.suspend
    assert proxy.http.get(f"/api/v1/builds/{waiting['id']}").json()["state"] == "queued"
    # the refused build's finished Job was replaced, not followed (issue #15)
    assert waiting_job.metadata.name == refused_job.metadata.name
    assert not jobs_of_build(api_client, namespace, refused["id"])

    # the daemon back: the build runs
    scale_buildkitd(1)
    assert wait_for_build(proxy, kube, waiting["id"])["state"] == "built"
