"""The name of the Lease that makes one replica the writer of the pre-pull DaemonSet
(issue 26).

A Lease of its own (``<instance>-prepull``, beside the DaemonSet), not the queue
keeper's: pre-pull runs with either executor, and the queue keeper's Lease lives in
the builds' namespace, which need not be the hub's. Held through the queue keeper's
``jobs.executors.kubernetes.lease.Lease``.
"""

from __future__ import annotations


def lease_name(instance: str) -> str:
    """``<instance>-prepull``: the Lease's name (the DaemonSet's too)."""
    return f"{instance}-prepull"
