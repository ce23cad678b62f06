"""``prepull``: the images the catalog offers, pulled onto the user nodes before anyone
spawns (issue 26; docs/design-prepull.md)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from .base import Section

DNS_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"

Z2JH_USER_NODES = {"hub.jupyter.org/node-purpose": "user"}
"""The label zero-to-jupyterhub's user nodes carry (``scheduling.userPods.nodeAffinity``);
``jobs.prepull.manifests`` has the same default (a unit test holds them equal)."""

Z2JH_USER_TOLERATIONS = [
    {"key": key, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    for key in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")
]
"""Tolerations of the taint zero-to-jupyterhub's docs put on user nodes."""


class PrepullSettings(Section):
    """A DaemonSet the service keeps current: on every node ``node_selector`` selects
    (nodes that join later included), its pod pulls each image the catalog offers, one
    after another, with the node's credentials and ``image_pull_secrets``. Off by
    default; needs a Kubernetes API the service may write DaemonSets and Leases in."""

    enabled: bool = False
    """Keep the pre-pull DaemonSet current: after each build that changes the catalog's
    offer, and every ``interval`` seconds."""

    namespace: str | None = Field(default=None, pattern=DNS_NAME)
    """Namespace of the DaemonSet and its Lease: the hub's, where its user pods' pull
    Secret is. Default: the namespace the service runs in (``kubernetes.namespace``)."""

    node_selector: dict[str, str] = Field(default_factory=lambda: dict(Z2JH_USER_NODES))
    """Labels of the nodes that get the images. Default: zero-to-jupyterhub's user-node
    label, ``hub.jupyter.org/node-purpose: user`` (z2jh puts user pods on unlabelled nodes
    too: a selector that matches no node is warned of in the service's log). ``{}``:
    every node."""

    tolerations: list[dict[str, str]] = Field(
        default_factory=lambda: [dict(t) for t in Z2JH_USER_TOLERATIONS]
    )
    """Tolerations of the DaemonSet's pods. Default: zero-to-jupyterhub's user-node
    taint, ``hub.jupyter.org/dedicated=user:NoSchedule`` (both spellings of the key)."""

    image_pull_secrets: list[str] = []
    """Secrets of ``namespace`` the nodes pull the images with, besides their own
    credentials (zero-to-jupyterhub's ``imagePullSecret`` makes ``image-pull-secret``)."""

    max_nodes_pulling: int = Field(default=2, ge=1)
    """How many nodes pull at once (the DaemonSet's ``maxUnavailable``); each node pulls
    one image at a time."""

    max_images: int = Field(default=20, ge=1)
    """At most this many images are pulled, the newest builds first: each takes node
    disk."""

    interval: float = Field(default=60.0, gt=0)
    """Seconds between two looks at the catalog besides those after a build: the
    images that leave the offer leave the DaemonSet, and builds that another replica
    finished reach it."""

    pause_image: str = ""
    """The image of the DaemonSet pod's long-lived container, which does nothing: one
    the nodes can pull already (the Helm chart sets the service's own image). Needed
    when ``enabled``."""

    pause_command: list[str] = ["sleep", "infinity"]
    """The command of that container; ``[]``: the image's own entrypoint."""

    @field_validator("image_pull_secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(DNS_NAME, name):
                raise ValueError(f"{name!r} is not a Secret name (lower case DNS name)")
        return value

    @model_validator(mode="after")
    def _needs_pause_image(self) -> PrepullSettings:
        if self.enabled and not self.pause_image.strip():
            raise ValueError(
                "prepull.pause_image is needed with prepull.enabled: an image every "
                "selected node can pull (the Helm chart sets the service's own image)"
            )
        return self
