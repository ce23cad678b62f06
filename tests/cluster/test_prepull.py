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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from jobs.prepull.cluster import PrepullDaemonSet
from jobs.prepull.manifests import PrepullSpec
from jobs.prepull.presence import Presence, selected_nodes
from jobs.retention.pods import PodImages
from jobs.settings import load_settings

from .conftest import DOCKER, STATE, Helpers

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
