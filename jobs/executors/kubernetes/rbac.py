"""The Kubernetes permissions the ``kubernetes`` executor needs, in its namespace.

This list is the one source: the Helm chart's Role must grant exactly these rules
(a chart test compares them), and the cluster tests run the executor with a Role
made from them, never as a cluster admin.
"""

from __future__ import annotations

from typing import Any

RULES: list[dict[str, Any]] = [
    # one Job per build: created (suspended), watched, let run (patch), cancelled (delete)
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    # the build pods: their state (scheduling, image pulls, exit codes) and their logs
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # why a build cannot start: the Job's FailedCreate, the pod's FailedMount
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    # each build's git credential, a Secret of its own owned by its Job, deleted when the
    # build ends (credentials.py); never read back
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]},
    # repo2docker's configuration file for build pods, kept by the service
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
    # the lease that makes one replica the keeper of the queue
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    },
    # whether the BuildKit daemon's Service has a ready endpoint (readiness, the queue)
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
]


def role(name: str, namespace: str) -> dict[str, Any]:
    """The Role manifest granting ``RULES``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": RULES,
    }
