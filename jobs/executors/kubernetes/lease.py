"""A Kubernetes Lease that makes one replica at a time the one that acts: the queue
keeper's (``queue_keeper``) and pre-pull's writer (``jobs.prepull.keeper``).

A Lease made empty (the Helm chart makes them so, for ``helm uninstall``) or whose
holder did not renew it within its duration is taken over.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException


def claim_lease(spec: Any, identity: str, now: dt.datetime, seconds: float) -> Any:
    """The Lease spec to write for ``identity`` to hold the Lease from ``now`` for
    ``seconds``, or None when another holder's Lease has not expired. Pure: ``spec``
    (a ``V1LeaseSpec``, or None for one made empty) is not changed.

    A Lease is expired when it names no holder, was never renewed, or was last
    renewed longer ago than its duration. Taking it over from another holder sets
    its acquire time and counts a transition."""
    spec = copy.copy(spec) if spec is not None else client.V1LeaseSpec()
    renewed = spec.renew_time or spec.acquire_time
    expired = (
        renewed is None
        or (now - renewed).total_seconds() > (spec.lease_duration_seconds or seconds)
        or not spec.holder_identity
    )
    if spec.holder_identity != identity and not expired:
        return None
    if spec.holder_identity != identity:
        spec.acquire_time = now
        spec.lease_transitions = (spec.lease_transitions or 0) + 1
    spec.holder_identity = identity
    spec.lease_duration_seconds = max(1, round(seconds))
    spec.renew_time = now
    return spec


class Lease:
    """A Lease ``name`` in ``namespace`` held by ``identity`` for ``seconds`` at a time
    (``claim_lease``), through ``coordination`` (a ``CoordinationV1Api``): the queue
    keeper's and pre-pull's. Blocking: call from a thread. Methods raise the client's
    ``ApiException`` when the API server refuses or fails."""

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
