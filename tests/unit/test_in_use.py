"""Which images running pods use (``jobs.retention.in_use``), from pod JSON in the
shapes containerd and Docker report (issue 26)."""

from __future__ import annotations

from typing import Any

from jobs.retention.in_use import images_in_use

IMAGE = "registry.example.org/binder-o-r-1a2b3c4d:" + "a" * 40
DIGEST = "sha256:" + "d" * 64
OTHER_DIGEST = "sha256:" + "e" * 64


def pod(phase: str, image: str, image_id: str = "", init: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "notebook", "image": image}]}
    status: dict[str, Any] = {"phase": phase}
    if init:
        spec["initContainers"] = [{"name": "block-cloud-metadata", "image": init}]
    if image_id:
        status["containerStatuses"] = [{"name": "notebook", "image": image, "imageID": image_id}]
    return {"metadata": {"name": f"jupyter-{phase.lower()}"}, "spec": spec, "status": status}


def test_running_and_pending_pods_count_finished_ones_do_not() -> None:
    pods = [
        pod("Running", IMAGE, f"registry.example.org/binder-o-r-1a2b3c4d@{DIGEST}"),
        pod("Pending", "registry.example.org/binder-x:" + "b" * 40, init="local/alpine:3"),
        pod("Succeeded", "registry.example.org/binder-gone:" + "c" * 40),
        pod("Failed", "registry.example.org/binder-failed:" + "c" * 40),
    ]
    assert images_in_use(pods) == {
        IMAGE,
        DIGEST,
        "registry.example.org/binder-x:" + "b" * 40,
        "local/alpine:3",
    }


def test_every_form_of_image_id_gives_its_digest() -> None:
    pods = [
        pod("Running", IMAGE, f"docker-pullable://registry.example.org/binder-o@{DIGEST}"),
        pod("Running", f"registry.example.org/binder-o@{OTHER_DIGEST}", OTHER_DIGEST),
        pod("Running", IMAGE, "sha256:" + "f" * 64),  # an image id, not a manifest: no harm
        {"metadata": {}, "spec": {}, "status": {}},  # a pod the API half filled
    ]
    assert images_in_use(pods) == {
        IMAGE,
        DIGEST,
        f"registry.example.org/binder-o@{OTHER_DIGEST}",
        OTHER_DIGEST,
    }
