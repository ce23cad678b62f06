"""The pre-pull DaemonSet in the cluster: written when the image list changes, and the
presence of each image read from its pods (issue 26). The manifests and the counting
are pure (``manifests``, ``presence``); this module is their I/O."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
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
from .presence import PrepullState, daemonset_presence

READ_TIMEOUT_SECONDS = 10.0
"""How long one read of the DaemonSet or its pods may take."""


class PrepullDaemonSet:
    """One DaemonSet (``spec``) through ``api``. Methods raise the client's
    ``ApiException`` when the API server refuses or fails, or a timeout."""

    def __init__(self, spec: PrepullSpec, api: client.ApiClient) -> None:
        self.spec = spec
        self.apps: Any = client.AppsV1Api(api)
        self.core: Any = client.CoreV1Api(api)

    def _write(self, images: Sequence[str], owner: Mapping[str, Any] | None) -> bool:
        name, namespace = daemonset_name(self.spec), self.spec.namespace
        body = make_prepull_daemonset(images, self.spec, owner)
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

    async def sync(self, images: Sequence[str], owner: Mapping[str, Any] | None = None) -> bool:
        """Make the DaemonSet pull ``images`` (``manifests.prepull_images``): created
        when missing, replaced when its list differs; True when it was written.
        ``owner``: its ``ownerReferences`` entry (``manifests.owner_reference``)."""
        return await asyncio.to_thread(self._write, list(images), owner)

    def _read(self) -> PrepullState:
        name, namespace = daemonset_name(self.spec), self.spec.namespace
        try:
            raw = self.apps.read_namespaced_daemon_set(
                name, namespace, _preload_content=False, _request_timeout=READ_TIMEOUT_SECONDS
            )
        except ApiException as e:
            if e.status == 404:  # not written yet: nothing is pulled anywhere
                return PrepullState(0, ())
            raise
        selector = ",".join(f"{k}={v}" for k, v in labels(self.spec).items())
        pods = self.core.list_namespaced_pod(
            namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=READ_TIMEOUT_SECONDS,
        )
        return daemonset_presence(json.loads(raw.data), json.loads(pods.data)["items"])

    async def state(self) -> PrepullState:
        """The images the DaemonSet pulls now, and on how many of the nodes it selects
        each one is (``presence.daemonset_presence``). Reads no node: the service needs
        no cluster-wide permission."""
        return await asyncio.to_thread(self._read)
