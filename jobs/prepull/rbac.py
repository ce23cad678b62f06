"""The Kubernetes permissions pre-pull needs, in its namespace (issue 26).

This list is the one source: the Helm chart's pre-pull Role grants exactly these rules,
those on the DaemonSet and the Lease limited to their names (a chart test compares
them), and the cluster test runs the keeper with a Role made from them. Nothing
cluster-scoped: the nodes the DaemonSet selects are counted by its controller
(``status.desiredNumberScheduled``), never read by the service.
"""

from __future__ import annotations

from typing import Any

RULES: list[dict[str, Any]] = [
    # the DaemonSet: read, made, rewritten when the offer changes
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "create", "update"]},
    # its pods: which image each node has (the init containers' states)
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    # the Lease that makes one replica the writer, and owns the DaemonSet
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    },
]
