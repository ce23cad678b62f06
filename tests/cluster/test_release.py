"""An upgrade from one release to the next (issue 22): the chart installed from its OCI
artifact with no image value, a build finished and one running, then ``helm upgrade`` to the
next release (two ``make release`` runs with two versions). The service's pod is replaced by
the next release's image; the finished build's record is still there (the state on its
volume, ``persistence``) and the running build goes on in its Job, to ``built``; the next
build runs the next release's builder image."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.chart.test_release_chart import UPSTREAM, images_of

from .conftest import FIRST_VERSION, NEXT_VERSION, NODE_IP
from .enforcement import node_egress, port_of
from .releases import DOCKER, Release
from .test_buildkit import base_registry, jobs_of_build  # noqa: F401 - a fixture
from .test_chart import (  # noqa: F401 - fixtures
    GITHUB_SECRET,
    RELEASE,
    SERVICE,
    ServiceProxy,
    commit,
    proxy,
    run_helm,
    send_push,
    wait_for_build,
)

pytestmark = pytest.mark.cluster


@pytest.fixture
def state_claim(core_v1: client.CoreV1Api, namespace: str, tmp_path: Path) -> Iterator[str]:
    """A claim for the service's state in the test's namespace, bound to a volume on a node
    folder (what a storage class gives a real cluster). Yields the claim's name."""
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o777)  # the service runs as 1000; a hostPath volume gets no fsGroup
    name = f"{namespace}-state"
    volume: Any = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(folder), "type": "Directory"},
        },
    }
    core_v1.create_persistent_volume(volume)
    claim: Any = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "state"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "",
            "volumeName": name,
        },
    }
    core_v1.create_namespaced_persistent_volume_claim(namespace, claim)
    try:
        yield "state"
    finally:
        with contextlib.suppress(client.ApiException):
            core_v1.delete_persistent_volume(name)


def test_an_upgrade_to_the_next_release_keeps_running_builds_and_state(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: Any,
    release_of: Callable[[str], Release],
    upstream_buildkit: str,
    base_registry: str,  # noqa: F811 - test_buildkit's fixture
    git_server: Any,
    state_claim: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    first, following = release_of(FIRST_VERSION), release_of(NEXT_VERSION)
    token = uuid.uuid4().hex[:8]
    base = f"FROM {base_registry}/debian:bookworm\nARG NB_USER\nARG NB_UID\n"
    quick, slow = f"up-quick-{token}.git", f"up-slow-{token}.git"
    quick_sha = git_server.create_repo(quick, {"Dockerfile": f"{base}ENV BUILD={token}\n"})
    slow_sha = git_server.create_repo(
        slow, {"Dockerfile": f"{base}ENV BUILD={token}\nRUN sleep 45 && echo slept\n"}
    )
    values = {
        "imagePrefix": f"{base_registry}/bhs-up-{token}-",
        "registry": {"url": f"http://{base_registry}"},
        "repos": [{"url": git_server.url(quick)}, {"url": git_server.url(slow)}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},  # send_push signs with it
        "persistence": {"enabled": True, "existingClaim": state_claim},
        # the test registry answers plain HTTP (real ones answer HTTPS)
        "builder": {"buildkit": {"insecureRegistries": [base_registry]}},
        # the git daemon and the registry are on the node's (private) address
        "networkPolicy": node_egress(NODE_IP, git_server.port, port_of(base_registry)),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))

    def service_pods() -> list[Any]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=service"
        return list(core_v1.list_namespaced_pod(namespace, label_selector=selector).items)

    def install(release: Release) -> Any:
        """``helm upgrade --install`` of ``release``'s chart; its ready service pod."""
        before = {pod.metadata.uid for pod in service_pods()}
        run_helm(helm, kubeconfig, namespace, "upgrade", "--install", RELEASE, release.chart,
                 "--version", release.version, "--plain-http", "-f", str(values_file),
                 "--wait", "--timeout", "10m")  # fmt: skip

        def replaced() -> Any:
            pods = [p for p in service_pods() if p.metadata.uid not in before]
            ready = [
                p for p in pods if all(c.ready for c in p.status.container_statuses or [False])
            ]
            return ready[0] if len(service_pods()) == 1 and ready else None

        return kube.wait_for(replaced, timeout=300, what="the service's new pod", interval=1)

    pod = install(first)
    assert pod.spec.containers[0].image == first.service_image

    # a finished build, and one running when the upgrade starts
    done = wait_for_build(proxy, kube, send_push(proxy, git_server.url(quick), quick_sha)["id"])
    assert done["state"] == "built", done.get("error")
    running = send_push(proxy, git_server.url(slow), slow_sha)

    def build_pod_running() -> Any:
        jobs = jobs_of_build(api_client, namespace, running["id"])
        if not jobs:
            return None
        selector = f"job-name={jobs[0].metadata.name}"
        pods = core_v1.list_namespaced_pod(namespace, label_selector=selector).items
        return pods[0] if pods and pods[0].status.phase == "Running" else None

    build_pod = kube.wait_for(
        build_pod_running, timeout=300, what="the slow build's pod", interval=1
    )
    assert build_pod.spec.containers[0].image == first.builder_image
    (job,) = jobs_of_build(api_client, namespace, running["id"])

    pod = install(following)
    assert pod.spec.containers[0].image == following.service_image
    labels = (
        client.AppsV1Api(api_client).read_namespaced_deployment(SERVICE, namespace).metadata.labels
    )
    assert labels["app.kubernetes.io/version"] == following.version

    # the state survived: the finished build's record, and the running build's
    kept = proxy.http.get(f"/api/v1/builds/{done['id']}")
    assert kept.status_code == 200, kept.text
    assert kept.json()["state"] == "built"
    finished = wait_for_build(proxy, kube, running["id"])
    assert finished["state"] == "built", finished.get("error")
    log = proxy.http.get(f"/api/v1/builds/{running['id']}/logs").text
    assert "slept" in log
    # ... in the Job it started in: followed, not started again
    (after,) = jobs_of_build(api_client, namespace, running["id"])
    assert after.metadata.uid == job.metadata.uid

    # the next build runs the next release's builder
    sha = commit(git_server, quick, {"Dockerfile": f"{base}ENV BUILD={token}-next\n"})
    nxt = wait_for_build(proxy, kube, send_push(proxy, git_server.url(quick), sha)["id"])
    assert nxt["state"] == "built", nxt.get("error")
    (next_job,) = jobs_of_build(api_client, namespace, nxt["id"])
    assert next_job.spec.template.spec.containers[0].image == following.builder_image


def test_the_released_service_image_names_its_version_and_builder(release: Release) -> None:
    """The service outside the chart builds with the builder image released with it."""
    script = (
        "from importlib.metadata import version; from jobs.settings import Settings;"
        "print(version('binderhub-service')); print(Settings().kubernetes.builder_image)"
    )
    out = subprocess.run(
        [DOCKER, "run", "--rm", release.service_image, "python3", "-c", script],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.split()
    assert out == [release.version, release.builder_image]


def test_the_oci_chart_names_only_the_releases_images_and_upstreams(
    helm: str, release: Release
) -> None:
    """``helm template oci://...`` of the pushed chart, with no values, for every builder."""
    for builder in ("buildkit", "docker-socket", "dind"):
        chart = [release.chart, "--version", release.version, "--plain-http"]
        out = subprocess.run(
            [helm, "template", "rel", *chart, "--set", f"builder.type={builder}"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        images = images_of([d for d in yaml.safe_load_all(out) if d])
        ours = {i for i in images if not i.startswith(UPSTREAM)}
        assert ours == {release.service_image, release.builder_image}, builder
