"""The pre-pull DaemonSet (pure manifests, golden and valid for the test cluster's
Kubernetes) and the per-image presence read from its pods' status (issue 26)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from jobs.model import Build, BuildState
from jobs.prepull.manifests import (
    IMAGES_ANNOTATION,
    PrepullSpec,
    images_hash,
    init_container_name,
    make_prepull_daemonset,
    prepull_images,
)
from jobs.prepull.presence import Presence, presence, selected_nodes

GOLDEN = Path(__file__).parent / "golden" / "prepull_daemonset.json"
KUBERNETES_VERSION = "1.34.0"
PREFIX = "registry.example.org/binder-"


def built(image: str, finished_at: float) -> Build:
    return Build(
        id=image[-8:],
        repo="https://github.com/o/r",
        ref="refs/heads/main",
        ref_kind="branch",
        sha=image.rsplit(":", 1)[1],
        image=image,
        name="n",
        state=BuildState.BUILT,
        trigger="webhook:github",
        created_at=finished_at - 60,
        finished_at=finished_at,
    )


IMAGES = [f"{PREFIX}o-r-1a2b3c4d:{c * 40}" for c in "abc"]
SPEC = PrepullSpec(
    namespace="jhub",
    instance="bhs",
    pause_image="registry.example.org/binderhub-service:1.0.0",
    image_pull_secrets=("image-pull-secret",),
)


def test_the_daemonset_is_the_golden_one() -> None:
    assert make_prepull_daemonset(IMAGES, SPEC) == json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("images", [IMAGES, IMAGES[:1], []])
def test_the_daemonset_is_valid_and_restricted(images: list[str]) -> None:
    daemonset = make_prepull_daemonset(images, SPEC)
    kubernetes_validate.validate(daemonset, KUBERNETES_VERSION, strict=True)
    pod = daemonset["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["initContainers"]] == images
    for container in [*pod["initContainers"], *pod["containers"]]:
        assert container["imagePullPolicy"] == "IfNotPresent"
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod
    assert "volumes" not in pod


def test_the_settings_shape_where_it_runs() -> None:
    spec = PrepullSpec(
        namespace="n",
        instance="x",
        pause_image="p",
        pause_command=(),
        node_selector={},
        tolerations=(),
        max_nodes_pulling=5,
    )
    daemonset = make_prepull_daemonset(IMAGES, spec)
    kubernetes_validate.validate(daemonset, KUBERNETES_VERSION, strict=True)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {}
    assert "command" not in pod["containers"][0]
    assert "imagePullSecrets" not in pod
    assert daemonset["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 5
    with pytest.raises(ValueError, match="max_nodes_pulling"):
        PrepullSpec(namespace="n", instance="x", pause_image="p", max_nodes_pulling=0)


def test_the_newest_build_is_pulled_first_and_the_list_is_bounded() -> None:
    builds = [built(IMAGES[0], 10.0), built(IMAGES[1], 30.0), built(IMAGES[2], 20.0)]
    assert prepull_images(builds, 20) == [IMAGES[1], IMAGES[2], IMAGES[0]]
    assert prepull_images([*builds, builds[0]], 2) == [IMAGES[1], IMAGES[2]]


def test_init_container_names_are_dns_labels_for_any_image() -> None:
    long = f"{PREFIX}{'x' * 200}:{'f' * 40}"
    name = init_container_name(19, long)
    assert len(name) <= 63
    assert name.startswith("pull-19-")
    assert init_container_name(0, IMAGES[0]) != init_container_name(0, IMAGES[1])


def node(name: str, labels: dict[str, str], ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(node_name: str, images: list[str], states: list[dict[str, Any]]) -> dict[str, Any]:
    """A pre-pull pod on ``node_name`` as the API answers it, with one init container
    state per image."""
    return {
        "metadata": {"annotations": {IMAGES_ANNOTATION: images_hash(images)}},
        "spec": {"nodeName": node_name},
        "status": {
            "initContainerStatuses": [
                {"name": init_container_name(i, image), "state": state}
                for i, (image, state) in enumerate(zip(images, states, strict=True))
            ]
        },
    }


DONE = {"terminated": {"exitCode": 0, "reason": "Completed"}}
PULLING = {"waiting": {"reason": "PodInitializing"}}
BACKOFF = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}


def test_presence_counts_the_selected_nodes_of_the_current_template() -> None:
    user = {"hub.jupyter.org/node-purpose": "user"}
    nodes = selected_nodes(
        [
            node("u1", user),
            node("u2", user),
            node("u3", user),
            node("down", user, ready=False),
            node("core", {"hub.jupyter.org/node-purpose": "core"}),
        ],
        user,
    )
    assert nodes == {"u1", "u2", "u3"}
    pods = [
        pod("u1", IMAGES, [DONE, DONE, DONE]),
        pod("u2", IMAGES, [DONE, BACKOFF, PULLING]),
        pod("u3", IMAGES[:2], [DONE, DONE]),  # the old template: not counted
        pod("core", IMAGES, [DONE, DONE, DONE]),  # not a selected node
    ]
    assert presence(IMAGES, pods, nodes) == [
        Presence(IMAGES[0], 2, 0, 3),
        Presence(IMAGES[1], 1, 1, 3),
        Presence(IMAGES[2], 1, 0, 3),
    ]
    assert presence(IMAGES, [], nodes)[0].to_json() == {
        "image": IMAGES[0],
        "present": 0,
        "failing": 0,
        "nodes": 3,
    }
