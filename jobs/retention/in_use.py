"""The images running pods use, from the Kubernetes API's pod list (issue 26).

Pure: pods are the API's JSON (camelCase). Every pod that is not finished counts, in
every namespace read: a user server being spawned (``Pending``, its image pulling) uses
its image as much as a running one does. Each container's ``image`` (as the pod spec
names it) and the digest of each status's ``imageID`` (the manifest the node
resolved: ``registry/repo@sha256:…``, ``docker-pullable://…@sha256:…``) are
returned: a user server started by a tag that was later moved still protects the
manifest it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")
FINISHED_PHASES = ("Succeeded", "Failed")
_KINDS = ("initContainers", "containers", "ephemeralContainers")
_STATUSES = ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")


def images_in_use(pods: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Image names and manifest digests (``sha256:…``) of every container of every
    unfinished pod of ``pods``. Pure."""
    found: set[str] = set()
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in FINISHED_PHASES:
            continue
        spec = pod.get("spec") or {}
        for kind in _KINDS:
            found.update(str(c["image"]) for c in spec.get(kind) or [] if c.get("image"))
        status = pod.get("status") or {}
        for kind in _STATUSES:
            for container in status.get(kind) or []:
                for key in ("image", "imageID"):
                    value = str(container.get(key) or "")
                    match = _DIGEST.search(value)
                    if match:
                        found.add(match.group(1))
                    elif key == "image" and value:
                        found.add(value)
    return frozenset(found)
