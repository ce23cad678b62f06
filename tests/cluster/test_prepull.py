"""Pre-pull's DaemonSet (``jobs.prepull``: its manifests, written by
``PrepullDaemonSet.sync``) on the real cluster, in a namespace that enforces Pod
Security "restricted": the node's containerd gets every image, the presence read from
the pods says so, a new image list replaces the old (and an unchanged one writes
nothing), and the images the pods use are what retention's in-use reader
(``jobs.retention.pods``) finds (issue 26)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from jobs.prepull.cluster import PrepullDaemonSet
from jobs.prepull.lease import lease_name
from jobs.prepull.manifests import PrepullSpec
from jobs.prepull.presence import Presence, selected_nodes
from jobs.prepull.rbac import RULES as PREPULL_RULES
from jobs.retention.pods import PodImages
from jobs.settings import load_settings
from testkit.components import ServiceProcess, dockerfile

from .conftest import CRICTL, DOCKER, NAMESPACE_LABEL, STATE, GitServer, Helpers, runtime_has
from .test_kubernetes_executor import follow, role_kubeconfig, servers, settings_for
from .walkthrough import signed_push

__all__ = ["CRICTL", "role_kubeconfig", "servers", "settings_for"]  # the executor's fixtures

pytestmark = pytest.mark.cluster


def pushed_image(registry: str, base_image: str, name: str) -> str:
    """An image of its own (a label makes its config, and so its manifest, differ from
    the base's) pushed to the node's registry as ``registry/name:<commit-like tag>``."""
    image = f"{registry}/{name}:{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(f"FROM {base_image}\nLABEL prepull.test={name}\n")
        subprocess.run([DOCKER, "build", "-q", "-t", image, ctx], check=True, capture_output=True)
    subprocess.run([DOCKER, "push", image], check=True, capture_output=True)
    subprocess.run([DOCKER, "rmi", image], check=True, capture_output=True)
    return image


def containerd_has(image: str) -> bool:
    """The node's container runtime has ``image`` (containerd's own CLI, ``ctr``)."""
    out = subprocess.run(
        [
            *("ctr", "--address", str(STATE / "containerd" / "containerd.sock")),
            *("-n", "k8s.io", "images", "ls", "-q", f"name=={image}"),
        ],
        capture_output=True,
        text=True,
    )
    return out.returncode == 0 and image in out.stdout.split()


def api_json(call: Callable[..., Any], *args: Any) -> list[dict[str, Any]]:
    """A list call's items as the API's JSON (camelCase)."""
    response = call(*args, _preload_content=False)
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def test_the_daemonset_puts_the_images_on_the_node(
    namespace: str,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    registry: str,
    base_image: str,
    pause_image: str,
    load_image: Callable[[str], str],
    kubeconfig: str,
    kube: type[Helpers],
) -> None:
    core_v1.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    load_image(pause_image)
    first = [pushed_image(registry, base_image, f"prepull-{n}") for n in ("a", "b")]
    for image in first:
        assert not containerd_has(image)
    spec = PrepullSpec(
        namespace=namespace,
        instance=f"t{uuid.uuid4().hex[:6]}",
        pause_image=pause_image,
        pause_command=(),  # the pause image's own entrypoint
        node_selector={},  # every node: the test cluster's has no z2jh label
    )
    daemonset = PrepullDaemonSet(spec, api_client)
    assert asyncio.run(daemonset.sync(first))
    assert not asyncio.run(daemonset.sync(first))  # the same list: nothing written
    assert len(selected_nodes(api_json(core_v1.list_node), {})) == 1

    def present(images: list[str]) -> tuple[Presence, ...] | None:
        counted = asyncio.run(daemonset.state()).images
        done = [p.image for p in counted] == images and all(p.present == 1 for p in counted)
        return counted if done else None

    counted = kube.wait_for(lambda: present(first), timeout=300, what="both images present")
    assert [(p.image, p.present, p.failing, p.nodes) for p in counted] == [
        (image, 1, 0, 1) for image in first
    ]
    for image in first:
        assert containerd_has(image)

    # what retention's in-use reader finds: the images, and the manifests the node pulled
    settings = load_settings(
        None, kubernetes={"kubeconfig": kubeconfig}, retention={"in_use_namespaces": [namespace]}
    )
    in_use = asyncio.run(PodImages(settings).read())
    assert set(first) <= in_use
    assert sum(1 for name in in_use if name.startswith("sha256:")) >= len(first)

    # a newer push replaces the oldest image in the set
    second = [pushed_image(registry, base_image, "prepull-c"), first[0]]
    assert asyncio.run(daemonset.sync(second))
    counted = kube.wait_for(lambda: present(second), timeout=300, what="the new list present")
    assert [p.image for p in counted] == second
    assert containerd_has(second[0])


# ------------------------------------------------------------------------------------------
# issue 26's test: a push builds an image; the node has it before any spawn
# ------------------------------------------------------------------------------------------

WEBHOOK_SECRET = "prepull test github secret"


def spawn_pod(name: str, image: str) -> Any:
    """A user pod stand-in: the image, ``IfNotPresent`` as KubeSpawner pulls by default,
    Pod Security "restricted" as the hub's namespace enforces."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "notebook",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/sh", "-c", "exit 0"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


@pytest.fixture
def hub_namespace(
    core_v1: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> Iterator[str]:
    """The hub's namespace (Pod Security "restricted"), apart from the builds': the
    service's account (``role_kubeconfig``, in ``namespace``) gets exactly pre-pull's
    ``RULES`` there and nothing else."""
    name = f"{namespace}-hub"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={
                    NAMESPACE_LABEL: "true",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            )
        )
    )
    rbac = client.RbacAuthorizationV1Api(api_client)
    role: Any = {"metadata": {"name": "prepull"}, "rules": PREPULL_RULES}
    rbac.create_namespaced_role(name, role)
    binding: Any = {
        "metadata": {"name": "prepull"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prepull"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "binderhub-service", "namespace": namespace}
        ],
    }
    rbac.create_namespaced_role_binding(name, binding)
    try:
        yield name
    finally:
        core_v1.delete_namespace(name, propagation_policy="Background")


def pushed(server: ServiceProcess, repo_url: str, sha: str) -> str:
    """Deliver GitHub's push of ``sha`` to the service; the build's id."""
    body, headers = signed_push(WEBHOOK_SECRET, repo_url, sha)
    with server.client() as http:
        answer = http.post("/hooks/github", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    (build,) = answer.json()["builds"]
    assert build["outcome"] == "created", build
    return str(build["id"])


def prepull_answer(server: ServiceProcess) -> dict[str, Any]:
    with server.client() as http:
        response = http.get("/api/v1/prepull")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_push_puts_its_image_on_the_node_before_any_spawn(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    hub_namespace: str,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    pause_image: str,
    load_image: Callable[[str], str],
    crictl: Callable[..., Any],
    kube: type[Helpers],
) -> None:
    load_image(pause_image)
    (node,) = [n.metadata.name for n in core_v1.list_node().items]
    # the Lease as the chart makes it (empty): the service holds it, and it owns the DaemonSet
    empty: Any = {"metadata": {"name": lease_name("binderhub-service")}, "spec": {}}
    made = client.CoordinationV1Api(api_client).create_namespaced_lease(hub_namespace, empty)
    first_sha = git_server.create_repo("prepull.git", {"Dockerfile": dockerfile("RUN echo one")})
    repo = git_server.url("prepull.git")
    server = servers(
        settings_for(
            allow_file_urls=False,
            ref_cache_seconds=0,
            repos=[{"url": repo}],
            webhooks={"github_secret": WEBHOOK_SECRET},
            prepull={
                "enabled": True,
                "namespace": hub_namespace,
                # the test node has no z2jh label: select it by its name
                "node_selector": {"kubernetes.io/hostname": node},
                "pause_image": pause_image,
                "pause_command": [],
                "interval": 600,  # only a build pokes it within the test
            },
        )
    )
    first = follow(server, pushed(server, repo, first_sha))
    assert first["state"] == "built", first
    image = first["image"]

    # before any spawn, the node's runtime has it, and the service says so
    def everywhere(wanted: str) -> dict[str, Any] | None:
        answer = prepull_answer(server)
        images = {i["image"]: i for i in answer["images"]}
        done = wanted in images and images[wanted]["present"] == answer["nodes"] == 1
        return answer if done else None

    answer = kube.wait_for(lambda: everywhere(image), timeout=300, what="the image pre-pulled")
    assert answer == {
        "enabled": True,
        "nodes": 1,
        "images": [{"image": image, "present": 1, "failing": 0, "nodes": 1}],
    }
    assert runtime_has(crictl, image)
    with server.client() as http:
        metrics = http.get("/metrics").text
    assert f'binderhub_service_prepull_nodes{{image="{image}"}} 1.0' in metrics

    # a spawn of it pulls nothing: the kubelet says the image was already present
    core_v1.create_namespaced_pod(hub_namespace, spawn_pod("spawn", image))

    def pulled_event() -> str | None:
        events = core_v1.list_namespaced_event(
            hub_namespace, field_selector="involvedObject.name=spawn"
        ).items
        messages = [e.message or "" for e in events if e.reason in ("Pulled", "Pulling")]
        return next((m for m in messages if "already present on machine" in m), None)

    message = kube.wait_for(pulled_event, timeout=120, what="the spawn's Pulled event")
    assert image in message
    events = core_v1.list_namespaced_event(
        hub_namespace, field_selector="involvedObject.name=spawn"
    ).items
    assert not [e for e in events if e.reason == "Pulling"]

    # a newer push replaces it in the set
    second_sha = git_server.commit("prepull.git", {"Dockerfile": dockerfile("RUN echo two")})
    second = follow(server, pushed(server, repo, second_sha))
    assert second["state"] == "built", second
    answer = kube.wait_for(
        lambda: everywhere(second["image"]), timeout=300, what="the newer image pre-pulled"
    )
    assert [i["image"] for i in answer["images"]] == [second["image"]]
    assert runtime_has(crictl, second["image"])
    daemonset = client.AppsV1Api(api_client).read_namespaced_daemon_set(
        lease_name("binderhub-service"), hub_namespace
    )
    pulled = [c.image for c in daemonset.spec.template.spec.init_containers]
    assert pulled == [second["image"]]
    (owner,) = daemonset.metadata.owner_references or []
    assert (owner.kind, owner.name, owner.uid) == ("Lease", made.metadata.name, made.metadata.uid)
