"""The pre-pull DaemonSet in the cluster: written when the image list changes, and the
presence of each image read from its pods (issue 26). The manifests and the counting
are pure (``manifests``, ``presence``); this module is their I/O."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .manifests import (
    IMAGES_ANNOTATION,
    PrepullSpec,
    daemonset_name,
    images_hash,
    labels,
    make_prepull_daemonset,
)
from .presence import Presence, presence, selected_nodes


class PrepullDaemonSet:
    """One DaemonSet (``spec``) through ``api``. Methods raise the client's
    ``ApiException`` when the API server refuses or fails."""

    def __init__(self, spec: PrepullSpec, api: client.ApiClient) -> None:
        self.spec = spec
        self.apps: Any = client.AppsV1Api(api)
        self.core: Any = client.CoreV1Api(api)

    def _write(self, images: Sequence[str]) -> bool:
        name, namespace = daemonset_name(self.spec), self.spec.namespace
        body = make_prepull_daemonset(images, self.spec)
        try:
            current = self.apps.read_namespaced_daemon_set(name, namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            self.apps.create_namespaced_daemon_set(namespace, body)
            return True
        annotations = current.spec.template.metadata.annotations or {}
        if annotations.get(IMAGES_ANNOTATION) == images_hash(images):
            return False
        # replace what was read: a 409 means another replica wrote it meanwhile
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        self.apps.replace_namespaced_daemon_set(name, namespace, body)
        return True

    async def sync(self, images: Sequence[str]) -> bool:
        """Make the DaemonSet pull ``images`` (``manifests.prepull_images``): created
        when missing, replaced when its list differs; True when it was written."""
        return await asyncio.to_thread(self._write, list(images))

    def _read(self, images: Sequence[str]) -> list[Presence]:
        selector = ",".join(f"{k}={v}" for k, v in labels(self.spec).items())
        pods = self.core.list_namespaced_pod(
            self.spec.namespace, label_selector=selector, _preload_content=False
        )
        nodes = self.core.list_node(_preload_content=False)
        selected = selected_nodes(json.loads(nodes.data)["items"], self.spec.node_selector)
        return presence(images, json.loads(pods.data)["items"], selected)

    async def presence(self, images: Sequence[str]) -> list[Presence]:
        """How many selected nodes have each of ``images`` (the list last synced)."""
        return await asyncio.to_thread(self._read, list(images))
