"""The pre-pull DaemonSet, as a plain dict: one pod per selected node whose init
containers pull the offered images, one after another (issue 26; docs/design-prepull.md).

Pure. Each init container runs ``/bin/sh -c 'exit 0'`` in its image (every image
repo2docker builds has ``sh``) with ``imagePullPolicy: IfNotPresent``: the kubelet pulls
it once, with the node's credentials and the pod's ``imagePullSecrets``, and a node
that has it starts it in milliseconds. The pod holds no privilege (Pod Security
"restricted"), no service account token and nothing of the service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import Build

Z2JH_USER_NODES = {"hub.jupyter.org/node-purpose": "user"}
"""The label zero-to-jupyterhub's user nodes carry (``scheduling.userPods.nodeAffinity``)."""

Z2JH_USER_TOLERATIONS: tuple[dict[str, str], ...] = tuple(
    {"key": key, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    for key in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")
)
"""Tolerations of the taint zero-to-jupyterhub's docs put on user nodes."""

IMAGES_ANNOTATION = "binderhub-service/prepull-images"
"""The template's hash of its image list: the DaemonSet is written only when it changes."""

COMPONENT = "prepull"


def restricted() -> dict[str, Any]:
    """Every container's securityContext: what Pod Security "restricted" asks. A new
    dict each call, so that no caller's change reaches another container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def small() -> dict[str, Any]:
    """Every container's resources: the pod's request is its largest init container's."""
    return {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}}


@dataclass(frozen=True)
class PrepullSpec:
    """Where and how the DaemonSet runs. ``instance`` names it (``<instance>-prepull``)
    and labels it; ``pause_image`` runs the pod's one long-lived container with
    ``pause_command`` (the service's own image and ``sleep infinity`` by default:
    an image the nodes can pull already); ``max_nodes_pulling`` bounds the nodes whose
    pods are replaced, and so pull, at once."""

    namespace: str
    instance: str
    pause_image: str
    pause_command: tuple[str, ...] = ("sleep", "infinity")
    node_selector: dict[str, str] = field(default_factory=lambda: dict(Z2JH_USER_NODES))
    tolerations: tuple[dict[str, str], ...] = Z2JH_USER_TOLERATIONS
    image_pull_secrets: tuple[str, ...] = ()
    max_nodes_pulling: int = 2
    max_images: int = 20

    def __post_init__(self) -> None:
        if self.max_nodes_pulling < 1:
            raise ValueError("max_nodes_pulling must be at least 1")
        if self.max_images < 1:
            raise ValueError("max_images must be at least 1")


def prepull_images(offered: Iterable[Build], max_images: int) -> list[str]:
    """The images to pull, newest build first (a new push is pulled before anything
    else), each once, at most ``max_images``. ``offered``: the catalog's offer
    (``jobs.catalog.offered_builds``). Pure."""
    ordered = sorted(offered, key=lambda b: (-(b.finished_at or b.created_at), b.image))
    images: list[str] = []
    for build in ordered:
        if build.image not in images:
            images.append(build.image)
    return images[:max_images]


def init_container_name(index: int, image: str) -> str:
    """``pull-<index>-<10 hex of the image's SHA-256>``: a DNS label for any image, and
    the index that says which init container pulls which image. Pure."""
    return f"pull-{index}-{hashlib.sha256(image.encode()).hexdigest()[:10]}"


def images_hash(images: Sequence[str]) -> str:
    """16 hex of the SHA-256 of the ordered image list. Pure."""
    return hashlib.sha256("\n".join(images).encode()).hexdigest()[:16]


def labels(spec: PrepullSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "binderhub-service",
        "app.kubernetes.io/instance": spec.instance,
        "app.kubernetes.io/component": COMPONENT,
    }


def daemonset_name(spec: PrepullSpec) -> str:
    return f"{spec.instance}-{COMPONENT}"


def _init_container(index: int, image: str) -> dict[str, Any]:
    return {
        "name": init_container_name(index, image),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", "exit 0"],
        "resources": small(),
        "securityContext": restricted(),
    }


def _pod_spec(images: Sequence[str], spec: PrepullSpec) -> dict[str, Any]:
    pause: dict[str, Any] = {
        "name": "pause",
        "image": spec.pause_image,
        "imagePullPolicy": "IfNotPresent",
        "resources": small(),
        "securityContext": restricted(),
    }
    if spec.pause_command:
        pause["command"] = list(spec.pause_command)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "nodeSelector": dict(spec.node_selector),
        "tolerations": [dict(t) for t in spec.tolerations],
        "initContainers": [_init_container(i, image) for i, image in enumerate(images)],
        "containers": [pause],
    }
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in spec.image_pull_secrets]
    return pod


def owner_reference(kind: str, api_version: str, name: str, uid: str) -> dict[str, Any]:
    """An ``ownerReferences`` entry: the DaemonSet goes when its owner goes (the Lease
    the Helm chart makes, so that ``helm uninstall`` removes the DaemonSet too). Pure."""
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}


def make_prepull_daemonset(
    images: Sequence[str], spec: PrepullSpec, owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The DaemonSet that pulls ``images`` (``prepull_images``) on every node
    ``spec.node_selector`` selects, nodes that join later included; owned by ``owner``
    (``owner_reference``) when given. Pure."""
    selected = labels(spec)
    metadata: dict[str, Any] = {
        "name": daemonset_name(spec),
        "namespace": spec.namespace,
        "labels": selected,
    }
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selected},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": spec.max_nodes_pulling},
            },
            "template": {
                "metadata": {
                    "labels": selected,
                    "annotations": {IMAGES_ANNOTATION: images_hash(images)},
                },
                "spec": _pod_spec(images, spec),
            },
        },
    }
