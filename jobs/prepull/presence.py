"""How many of the selected nodes have each pre-pulled image, read from the pre-pull
pods' status (issue 26). Pure: the pods and nodes are the API's JSON (camelCase, as
``ApiClient.sanitize_for_serialization`` or a raw list answer gives them).

A node has an image when its pod of the current template (``IMAGES_ANNOTATION`` equal
to the hash of the current list) shows that image's init container terminated with
exit code 0. Not ``node.status.images``: the kubelet lists at most 50 images there
(``nodeStatusMaxImages``), and real repo2docker images crowd it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .manifests import IMAGES_ANNOTATION, images_hash, init_container_name

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


@dataclass(frozen=True)
class Presence:
    """``image`` is on ``present`` of the ``nodes`` selected nodes; on ``failing`` of
    them its pull fails (deleted, refused credentials)."""

    image: str
    present: int
    failing: int
    nodes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "present": self.present,
            "failing": self.failing,
            "nodes": self.nodes,
        }


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selected_nodes(nodes: Iterable[Mapping[str, Any]], selector: Mapping[str, str]) -> set[str]:
    """The names of the Ready nodes whose labels include ``selector``. Pure."""
    found = set()
    for node in nodes:
        meta = node.get("metadata", {})
        node_labels = meta.get("labels") or {}
        if all(node_labels.get(k) == v for k, v in selector.items()) and _ready(node):
            found.add(str(meta.get("name")))
    return found


def _init_states(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    statuses = pod.get("status", {}).get("initContainerStatuses") or []
    return {str(s.get("name")): s.get("state") or {} for s in statuses}


def presence(
    images: Sequence[str], pods: Iterable[Mapping[str, Any]], nodes: set[str]
) -> list[Presence]:
    """For each of ``images`` (the current list, in its order), on how many of
    ``nodes`` (``selected_nodes``) it is present or failing, from the pre-pull
    ``pods``. Pods of an older template, or on nodes not selected, are not counted.
    Pure."""
    current = images_hash(images)
    present: list[set[str]] = [set() for _ in images]
    failing: list[set[str]] = [set() for _ in images]
    for pod in pods:
        annotations = pod.get("metadata", {}).get("annotations") or {}
        node = pod.get("spec", {}).get("nodeName")
        if annotations.get(IMAGES_ANNOTATION) != current or node not in nodes:
            continue
        states = _init_states(pod)
        for index, image in enumerate(images):
            state = states.get(init_container_name(index, image), {})
            if (state.get("terminated") or {}).get("exitCode") == 0:
                present[index].add(node)
            elif (state.get("waiting") or {}).get("reason") in PULL_FAILURES:
                failing[index].add(node)
    return [
        Presence(image, len(present[i]), len(failing[i]), len(nodes))
        for i, image in enumerate(images)
    ]


@dataclass(frozen=True)
class PrepullState:
    """The DaemonSet's image list, each with its presence, and ``nodes``: how many nodes
    it selects (its ``status.desiredNumberScheduled``: the nodes whose labels match
    the node selector and whose taints the pods tolerate)."""

    nodes: int
    images: tuple[Presence, ...]

    def to_json(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "images": [p.to_json() for p in self.images]}


def daemonset_images(daemonset: Mapping[str, Any]) -> list[str]:
    """The images the DaemonSet's template pulls, in its order (its init containers').
    Pure."""
    template = daemonset.get("spec", {}).get("template", {}).get("spec", {})
    return [str(c.get("image")) for c in template.get("initContainers") or []]


def daemonset_presence(
    daemonset: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
) -> PrepullState:
    """Presence of each image the ``daemonset`` pulls (API JSON), from its ``pods``:
    ``presence`` over the nodes its pods run on, out of the nodes it selects. Needs no
    read of the nodes (cluster-scoped): the DaemonSet controller counts them. Pure."""
    pods = list(pods)
    images = daemonset_images(daemonset)
    selected = int((daemonset.get("status") or {}).get("desiredNumberScheduled") or 0)
    on = {str(pod["spec"]["nodeName"]) for pod in pods if pod.get("spec", {}).get("nodeName")}
    counted = presence(images, pods, on)
    return PrepullState(
        selected,
        tuple(
            Presence(p.image, min(p.present, selected), min(p.failing, selected), selected)
            for p in counted
        ),
    )
