"""The Lease that makes one replica the writer of the pre-pull DaemonSet (issue 26).

A Lease of its own (``<instance>-prepull``, beside the DaemonSet), not the queue
keeper's: pre-pull runs with either executor, and the queue keeper's Lease lives in
the builds' namespace, which need not be the hub's. The rule of who holds it is the
queue keeper's (``claim_lease``): taken when it names no holder or was not renewed
within its duration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..executors.kubernetes.queue_keeper import claim_lease


def lease_name(instance: str) -> str:
    """``<instance>-prepull``: the Lease's name (the DaemonSet's too)."""
    return f"{instance}-prepull"


class PrepullLease:
    """Held by ``identity`` in ``namespace`` for ``seconds`` at a time, through
    ``coordination`` (a ``CoordinationV1Api``). Blocking: call from a thread. Methods
    raise the client's ``ApiException`` when the API server refuses or fails."""

    def __init__(
        self, coordination: Any, name: str, namespace: str, identity: str, seconds: float
    ) -> None:
        self._api = coordination
        self.name, self.namespace, self.identity = name, namespace, identity
        self.seconds = seconds

    def hold(self, now: dt.datetime | None = None) -> Any:
        """Take or renew the Lease: the Lease (a ``V1Lease``, whose ``metadata.uid``
        owns the DaemonSet) when this process holds it, else None."""
        now = now or dt.datetime.now(dt.UTC)
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=claim_lease(None, self.identity, now, self.seconds),
            )
            try:
                return self._api.create_namespaced_lease(self.namespace, body)
            except ApiException as e2:
                if e2.status == 409:  # another replica made it first
                    return None
                raise
        spec = claim_lease(lease.spec, self.identity, now, self.seconds)
        if spec is None:
            return None
        lease.spec = spec
        try:
            return self._api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as e:
            if e.status == 409:  # someone else renewed or took it first
                return None
            raise

    def release(self) -> None:
        """Give the Lease up, so that another replica takes it over at once."""
        lease = self._api.read_namespaced_lease(self.name, self.namespace)
        if lease.spec is not None and lease.spec.holder_identity == self.identity:
            lease.spec.holder_identity = None
            lease.spec.renew_time = None
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
