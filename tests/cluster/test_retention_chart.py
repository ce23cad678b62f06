"""Registry retention from the chart's CronJob on the real test cluster (issue 26): the
release builds three commits of one branch through a push webhook; a user server in
another namespace (the hub's) runs the oldest image; Jobs made from the CronJob, as
``kubectl create job --from=cronjob/...`` makes them, run ``binderhub-service retention``
against a real registry with authentication and deletion on. A dry run deletes nothing and
says what it would delete; a real run deletes the superseded middle image and keeps the
newest (offered, newest of its branch) and the oldest (in use), records the deletion
(``GET /api/v1/retention/deletions``, ``/metrics``). The retention pods are admitted in a
namespace that enforces Pod Security "restricted".

The service runs with ``hostNetwork`` as in test_chart.py (the build pods' Docker daemon
pushes to the registry on the node's loopback); the retention pods do not, and reach the
same registry at the node's address (``registry.url``), as a pod reaches a registry
elsewhere.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from jobs.registry.auth import make_docker_config
from jobs.registry.client import MANIFEST_ACCEPT
from testkit.components import Registry, start_registry

from . import test_chart
from .conftest import NODE_IP
from .enforcement import node_egress
from .releases import plain_http_for_node
from .test_chart import (
    CHART,
    GITHUB_SECRET,
    RELEASE,
    SERVICE,
    ServiceProxy,
    commit,
    free_port,
    run_helm,
    send_push,
    wait_for_build,
)

pytestmark = pytest.mark.cluster

service_image = test_chart.service_image  # fixtures of the chart's cluster test
proxy = test_chart.proxy
RETENTION = f"{SERVICE}-retention"
USER, PASSWORD = "retention", uuid.uuid4().hex


def dockerfile(token: str, step: int) -> str:
    # each commit's image differs (a manifest shared by two commits would be kept with
    # the kept one: the policy's shares-digest)
    return f"FROM local/debian:bookworm\nARG NB_USER\nARG NB_UID\nLABEL bhs-ret={token}-{step}\n"


def manifest_status(registry: Registry, image: str) -> int:
    """The registry's answer (200, 404) to a HEAD of ``image``'s manifest."""
    name, _, tag = image.partition("/")[2].rpartition(":")
    response = httpx.head(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        headers={"Accept": MANIFEST_ACCEPT},
        auth=(USER, PASSWORD),
        timeout=30,
    )
    return response.status_code


def run_from_cronjob(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, kube: Any, namespace: str, name: str
) -> tuple[bool, str]:
    """A Job ``name`` from the CronJob's template (what ``kubectl create job --from``
    does), run to its end: whether it succeeded, and its pod's log."""
    cronjob = batch_v1.read_namespaced_cron_job(RETENTION, namespace)
    template = cronjob.spec.job_template
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name=name,
            labels=template.metadata.labels,
            annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            owner_references=[
                client.V1OwnerReference(
                    api_version="batch/v1",
                    kind="CronJob",
                    name=RETENTION,
                    uid=str(cronjob.metadata.uid),
                    controller=True,
                )
            ],
        ),
        spec=template.spec,
    )
    batch_v1.create_namespaced_job(namespace, job)

    def ended() -> Any:
        status = batch_v1.read_namespaced_job(name, namespace).status
        return status if (status.succeeded or status.failed) else None

    status = kube.wait_for(ended, timeout=300, what=f"Job {name} to end", interval=2)
    (pod,) = core_v1.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    log = core_v1.read_namespaced_pod_log(str(pod.metadata.name), namespace)
    return bool(status.succeeded), str(log)


def test_the_cronjob_deletes_the_superseded_image_and_keeps_the_one_in_use(
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    kube: Any,
    git_server: Any,
    service_image: str,
    builder_image: str,
    proxy: ServiceProxy,
    tmp_path: Path,
) -> None:
    registry = start_registry(
        # also at the node's address, where the retention pods reach it
        tmp_path / "registry",
        auth=(USER, PASSWORD),
        listen="0.0.0.0",  # noqa: S104
        delete=True,
    )
    hub = f"{namespace}-hub"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=hub, labels={"binderhub-service-test": "true"})
        )
    )
    try:
        with plain_http_for_node(registry.host):
            run_scenario(
                helm, kubeconfig, namespace, hub, core_v1, batch_v1, kube, git_server,
                service_image, builder_image, proxy, tmp_path, registry,
            )  # fmt: skip
    finally:
        core_v1.delete_namespace(hub, propagation_policy="Background")
        registry.stop()


def run_scenario(
    helm: str,
    kubeconfig: str,
    namespace: str,
    hub: str,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    kube: Any,
    git_server: Any,
    service_image: str,
    builder_image: str,
    proxy: ServiceProxy,
    tmp_path: Path,
    registry: Registry,
) -> None:
    token = uuid.uuid4().hex[:8]
    repo_name = f"retention-{token}.git"
    shas = [git_server.create_repo(repo_name, {"Dockerfile": dockerfile(token, 0)})]
    repo_url = git_server.url(repo_name)
    port = int(registry.host.rsplit(":", 1)[1])
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "hostNetwork": True,
        "containerPort": free_port(),
        "strategy": {"type": "Recreate"},
        "imagePrefix": f"{registry.host}/bhs-ret-{token}-",
        # the same registry, at the node's address: where pods without hostNetwork reach it
        "registry": {"url": f"http://{NODE_IP}:{port}", "username": USER},
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET, "registryPassword": PASSWORD},
        "builder": {
            "type": "docker-socket",
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "ttlSecondsAfterFinished": 30,
        },
        "networkPolicy": node_egress(NODE_IP, git_server.port),
        "logFormat": "text",
        # "recent" protects an image for keepDays; it may not be shorter than the cache
        "config": {"registry": {"cache_seconds": 1}},
        "retention": {
            "enabled": True,
            "schedule": "0 0 1 1 *",  # never during the test: its Jobs are made below
            "dryRun": True,
            "keepPerRef": 1,
            "keepDays": 0.00002,  # 1.7 s
            "inUseNamespaces": [hub],
        },
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))

    def helm_(*args: str) -> str:
        return run_helm(helm, kubeconfig, namespace, *args)

    helm_("install", RELEASE, str(CHART), "-f", str(values_file), "--wait", "--timeout", "5m")
    kube.wait_for(
        lambda: proxy.http.get("/health").status_code == 200,
        timeout=60,
        what="/health through the Service",
    )

    # -- three commits of main, built one after the other ----------------------------------
    images = []
    for step in range(3):
        if step:
            shas.append(commit(git_server, repo_name, {"Dockerfile": dockerfile(token, step)}))
        build = send_push(proxy, repo_url, shas[step])
        done = wait_for_build(proxy, kube, build["id"])
        assert done["state"] == "built", done.get("error")
        images.append(build["image"])
    oldest, superseded, newest = images
    assert [manifest_status(registry, image) for image in images] == [200, 200, 200]

    # -- a user server in the hub's namespace runs the oldest image ------------------------
    kube.wait_for(
        lambda: (
            core_v1.list_namespaced_service_account(
                hub, field_selector="metadata.name=default"
            ).items
        ),
        timeout=60,
        what=f"the default service account of {hub}",
    )
    pull_secret = json.dumps(make_docker_config(registry.host, USER, PASSWORD))
    core_v1.create_namespaced_secret(
        hub,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="pull"),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": pull_secret},
        ),
    )
    server = kube.pod_manifest("jupyter-ann", oldest, ["sleep", "infinity"], pull_policy="Always")
    server["spec"]["imagePullSecrets"] = [{"name": "pull"}]
    core_v1.create_namespaced_pod(hub, server)
    kube.wait_for_pod_phase(core_v1, hub, "jupyter-ann", {"Running"})

    # the retention pods are admitted where Pod Security "restricted" is enforced
    core_v1.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    time.sleep(2)  # past keepDays (1.7 s) since the last build: no image is "recent"

    # -- a dry run lists what it would delete, and deletes nothing -------------------------
    ok, log = run_from_cronjob(batch_v1, core_v1, kube, namespace, "retention-dry")
    assert ok, log
    assert f"would delete {superseded}" in log
    assert f"kept {oldest}: in-use" in log
    assert f"kept {newest}: offered, newest" in log
    assert [manifest_status(registry, image) for image in images] == [200, 200, 200]
    assert proxy.http.get("/api/v1/retention/deletions").json()["deletions"] == []

    # -- a real run deletes the superseded image, and keeps the one in use -----------------
    values["retention"]["dryRun"] = False
    values_file.write_text(yaml.safe_dump(values))
    # the chart refuses to install its hostNetwork service pod (this test's way to the
    # loopback registry) where "restricted" is enforced: off for the upgrade, then on again
    enforce = "pod-security.kubernetes.io/enforce"
    core_v1.patch_namespace(namespace, {"metadata": {"labels": {enforce: None}}})
    helm_("upgrade", RELEASE, str(CHART), "-f", str(values_file), "--wait", "--timeout", "5m")
    core_v1.patch_namespace(namespace, {"metadata": {"labels": {enforce: "restricted"}}})
    ok, log = run_from_cronjob(batch_v1, core_v1, kube, namespace, "retention-run")
    assert ok, log
    assert f"deleted {superseded}" in log
    assert [manifest_status(registry, image) for image in images] == [200, 404, 200]
    (deletion,) = proxy.http.get("/api/v1/retention/deletions").json()["deletions"]
    assert deletion["image"] == superseded
    metrics = proxy.http.get("/metrics").text
    assert "binderhub_service_retention_deleted_total 1.0" in metrics
    # the user server still runs
    pod = core_v1.read_namespaced_pod("jupyter-ann", hub)
    assert pod.status.phase == "Running"
