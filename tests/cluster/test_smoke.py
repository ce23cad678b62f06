"""Smoke tests of the real test cluster: what the service relies on actually works."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from .conftest import GitServer, Helpers

pytestmark = pytest.mark.cluster


def job_manifest(name: str, image: str, command: list[str], ttl: int | None = None) -> Any:
    """A Job as a dict (the client takes one where it types a ``V1Job``)."""
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "main", "image": image, "imagePullPolicy": "Never", "command": command}
                ],
            }
        },
    }
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def job_condition(job: client.V1Job, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (job.status.conditions or []))


def test_node_is_ready(core_v1: client.CoreV1Api) -> None:
    nodes = core_v1.list_node().items
    assert [n.metadata.name for n in nodes] == ["bhs-node"]
    ready = {c.type: c.status for c in nodes[0].status.conditions}["Ready"]
    assert ready == "True"


def test_job_runs_to_completion_and_its_log_is_readable(
    batch_v1: client.BatchV1Api,
    core_v1: client.CoreV1Api,
    namespace: str,
    kube: type[Helpers],
    tools_image: str,
) -> None:
    token = uuid.uuid4().hex
    batch_v1.create_namespaced_job(
        namespace, job_manifest("hello", tools_image, ["echo", f"hello {token}"])
    )

    def finished(_type: str, job: client.V1Job) -> bool:
        assert not job_condition(job, "Failed"), job.status
        return job_condition(job, "Complete")

    kube.watch_until(
        batch_v1.list_namespaced_job,
        finished,
        180,
        "job hello to complete",
        namespace=namespace,
        field_selector="metadata.name=hello",
    )
    pods = core_v1.list_namespaced_pod(namespace, label_selector="job-name=hello").items
    assert len(pods) == 1
    assert pods[0].status.phase == "Succeeded"
    log = core_v1.read_namespaced_pod_log(str(pods[0].metadata.name), namespace)
    assert log == f"hello {token}\n"


def test_finished_job_is_deleted_after_its_ttl(
    batch_v1: client.BatchV1Api, namespace: str, kube: type[Helpers], tools_image: str
) -> None:
    batch_v1.create_namespaced_job(
        namespace, job_manifest("short-lived", tools_image, ["true"], ttl=1)
    )

    # The TTL-after-finished controller deletes the job once it has completed.
    _, job = kube.watch_until(
        batch_v1.list_namespaced_job,
        lambda t, j: t == "DELETED",
        180,
        "job short-lived to be deleted",
        namespace=namespace,
        field_selector="metadata.name=short-lived",
    )
    assert job.status.succeeded == 1
    assert job_condition(job, "Complete")


def test_pod_runs_docker_version_through_the_node_socket(
    core_v1: client.CoreV1Api, namespace: str, kube: type[Helpers], tools_image: str, docker: str
) -> None:
    expected = subprocess.run(
        [docker, "version", "--format", "{{.Server.Version}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    core_v1.create_namespaced_pod(
        namespace,
        kube.pod_manifest(
            "docker-version",
            tools_image,
            ["docker", "version", "--format", "server={{.Server.Version}}"],
            volumes=[
                {
                    "name": "docker-sock",
                    "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"},
                }
            ],
            mounts=[{"name": "docker-sock", "mountPath": "/var/run/docker.sock"}],
        ),
    )
    kube.wait_for_pod_phase(core_v1, namespace, "docker-version", {"Succeeded"})
    assert (
        core_v1.read_namespaced_pod_log("docker-version", namespace).strip() == f"server={expected}"
    )


def test_host_network_pod_reaches_the_node_registry(
    core_v1: client.CoreV1Api, namespace: str, kube: type[Helpers], tools_image: str, registry: str
) -> None:
    core_v1.create_namespaced_pod(
        namespace,
        kube.pod_manifest(
            "registry-probe",
            tools_image,
            ["curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}", f"http://{registry}/v2/"],
            host_network=True,
        ),
    )
    kube.wait_for_pod_phase(core_v1, namespace, "registry-probe", {"Succeeded"})
    assert core_v1.read_namespaced_pod_log("registry-probe", namespace) == "200"


def test_pod_image_is_pulled_from_the_node_registry(
    core_v1: client.CoreV1Api,
    namespace: str,
    kube: type[Helpers],
    registry: str,
    docker: str,
    pause_image: str,
) -> None:
    # what a launch after a build does: docker pushes, the kubelet pulls (plain HTTP)
    token = uuid.uuid4().hex[:12]
    image = f"{registry}/bhs-smoke/pause:{token}"
    # an image of its own (a label makes it unique), so the pull cannot be skipped
    subprocess.run(
        [docker, "build", "-q", "-t", image, "-"],
        check=True,
        capture_output=True,
        input=f"FROM {pause_image}\nLABEL bhs-smoke-token={token}\n".encode(),
    )
    try:
        subprocess.run([docker, "push", image], check=True, capture_output=True)
        digest = subprocess.run(
            [docker, "image", "inspect", "-f", "{{index .RepoDigests 0}}", image],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        core_v1.create_namespaced_pod(
            namespace, kube.pod_manifest("pulled", image, ["/pause"], pull_policy="Always")
        )
        pod = kube.wait_for_pod_phase(core_v1, namespace, "pulled", {"Running"})
        status = pod.status.container_statuses[0]
        assert status.image == image
        assert status.image_id == digest
    finally:
        subprocess.run([docker, "rmi", image], check=False, capture_output=True)


def test_pod_clones_from_the_node_git_daemon(
    core_v1: client.CoreV1Api,
    namespace: str,
    kube: type[Helpers],
    tools_image: str,
    git_server: GitServer,
) -> None:
    sha = git_server.create_repo("smoke.git", {"README.md": "hello\n"})
    url = git_server.url("smoke.git")
    core_v1.create_namespaced_pod(
        namespace,
        kube.pod_manifest(
            "git-clone",
            tools_image,
            [
                "sh",
                "-c",
                f"git clone -q {url} /tmp/r && git -C /tmp/r rev-parse HEAD"
                " && cat /tmp/r/README.md",
            ],
        ),
    )
    kube.wait_for_pod_phase(core_v1, namespace, "git-clone", {"Succeeded"})
    assert core_v1.read_namespaced_pod_log("git-clone", namespace) == f"{sha}\nhello\n"


def test_pod_reaches_the_api_server_through_its_service(
    core_v1: client.CoreV1Api, namespace: str, kube: type[Helpers], tools_image: str
) -> None:
    # in-cluster clients use the kubernetes service (kube-proxy) and a service account token
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    core_v1.create_namespaced_pod(
        namespace,
        kube.pod_manifest(
            "in-cluster",
            tools_image,
            [
                "sh",
                "-c",
                f'curl -sS --cacert {sa}/ca.crt -H "Authorization: Bearer $(cat {sa}/token)" '
                '"https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT'
                f'/api/v1/namespaces/{namespace}/pods/in-cluster" '
                f'-o /dev/null -w "%{{http_code}}"',
            ],
        ),
    )
    # the default service account may not read pods: RBAC answers 403, not a connection error
    kube.wait_for_pod_phase(core_v1, namespace, "in-cluster", {"Succeeded"})
    assert core_v1.read_namespaced_pod_log("in-cluster", namespace).endswith("403")


def test_helm_installs_a_chart(
    core_v1: client.CoreV1Api, namespace: str, helm: str, kubeconfig: str, tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    # kubeVersion: the cluster must report its real version (charts check it)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: bhs-smoke\nversion: 0.1.0\nkubeVersion: '>=1.34.0-0'\n"
    )
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    helm_cmd = [helm, "--kubeconfig", kubeconfig, "--namespace", namespace]

    def run_helm(*args: str) -> None:
        result = subprocess.run([*helm_cmd, *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    run_helm("install", "smoke", str(chart), "--set", "greeting=hi", "--wait", "--timeout", "2m")
    assert core_v1.read_namespaced_config_map("smoke-config", namespace).data == {"greeting": "hi"}
    run_helm("uninstall", "smoke", "--wait")
