"""Does a NetworkPolicy let one endpoint connect to another? Decided by code, for the
questions a cluster cannot answer by itself: another network plugin's reading of the same
policies (Cilium's), and values the test cluster does not run. The test cluster enforces
policies (kube-router, tests/cluster/up.sh); tests/cluster/test_network_policy.py holds this
code's standard reading to it.

Pure functions over manifests as dicts. The rules are Kubernetes' (NetworkPolicy reference,
https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- a pod no Ingress (Egress) policy of its namespace selects admits (makes) every connection;
  once one does, only what some rule of those policies allows (rules add up, never subtract);
  a connection between two pods needs the source's egress and the target's ingress;
- a rule with no ``from``/``to`` (or an empty one) admits every peer; with no ``ports``, every
  port;
- a peer with only ``podSelector`` means pods of the policy's own namespace; with only
  ``namespaceSelector``, every pod of the matching namespaces; with both, the matching pods of
  the matching namespaces. An empty selector (``{}``) matches everything;
- ``matchLabels`` and ``matchExpressions`` (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``)
  must all hold;
- ``ipBlock`` (a CIDR minus its ``except`` ranges) names addresses. Which addresses is the
  network plugin's choice, which the reference leaves open: under ``STANDARD`` (kube-router,
  Calico, the test cluster) it matches any address in the block, pods' and nodes' included;
  under ``CILIUM`` it never matches a pod's or a node's address (Cilium's "CIDR rules do not
  apply to traffic where both sides of the connection are either managed by Cilium or use an
  IP belonging to a node in the cluster", docs.cilium.io, Layer 3 policy), only addresses
  outside the cluster. GKE Dataplane V2 and AKS's Azure CNI powered by Cilium are Cilium.

An endpoint without an address (``Pod(ip=None)``) is never inside a block.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Semantics = Literal["standard", "cilium"]
STANDARD: Semantics = "standard"
CILIUM: Semantics = "cilium"


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its labels and its namespace's name and labels.

    Kubernetes labels every namespace ``kubernetes.io/metadata.name: <name>``; that label is
    added here, so ``namespace_labels`` need only hold the others."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None

    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, "kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class Address:
    """An endpoint that is no pod: an address outside the cluster (a registry, a package
    index, the cloud metadata service) or, with ``node``, a node's (the Kubernetes API on a
    control-plane node, a service on the node's address)."""

    ip: str
    node: bool = False


Endpoint = Pod | Address


@dataclass(frozen=True)
class Port:
    """The destination port: its number, and its name in the target container (if any)."""

    number: int
    name: str | None = None
    protocol: str = "TCP"


class UnsupportedSelector(ValueError):
    """A selector this code cannot read (an unknown operator): never a silent "no match"."""


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector (``matchLabels``, ``matchExpressions``).

    ``None`` and ``{}`` match everything. Raises ``UnsupportedSelector`` for an operator
    other than ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = [str(v) for v in expression.get("values") or []]
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise UnsupportedSelector(f"unknown matchExpressions operator {operator!r}")
        if not ok:
            return False
    return True


def in_block(block: Mapping[str, Any], ip: str) -> bool:
    """Whether ``ip`` is inside an ``ipBlock`` (its ``cidr``, none of its ``except``)."""
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(
        address in ipaddress.ip_network(cidr, strict=False) for cidr in block.get("except") or []
    )


def peer_matches(
    peer: Mapping[str, Any],
    policy_namespace: str,
    endpoint: Endpoint,
    semantics: Semantics = STANDARD,
) -> bool:
    """Whether one ``from``/``to`` entry of a policy in ``policy_namespace`` names
    ``endpoint`` (see the module's docstring for ``ipBlock`` under each ``semantics``)."""
    if "ipBlock" in peer:
        if endpoint.ip is None:
            return False
        if semantics == CILIUM and (isinstance(endpoint, Pod) or endpoint.node):
            return False
        return in_block(peer["ipBlock"], endpoint.ip)
    if not isinstance(endpoint, Pod):
        return False  # selectors name pods only
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = endpoint.namespace == policy_namespace
    else:
        in_namespace = selector_matches(namespaces, endpoint.all_namespace_labels())
    return in_namespace and selector_matches(pods, endpoint.labels)


def port_matches(rule_port: Mapping[str, Any], port: Port) -> bool:
    """Whether one ``ports`` entry admits ``port`` (by number, range or container port name)."""
    if rule_port.get("protocol", "TCP") != port.protocol:
        return False
    wanted = rule_port.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str) and not wanted.isdigit():
        return wanted == port.name
    end = rule_port.get("endPort")
    return int(wanted) <= port.number <= int(end if end is not None else wanted)


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    """``spec.policyTypes``, or Kubernetes' default: Ingress, and Egress with egress rules."""
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _selecting(
    policies: Iterable[Mapping[str, Any]], pod: Pod, direction: str
) -> list[Mapping[str, Any]]:
    return [
        p
        for p in policies
        if p.get("kind", "NetworkPolicy") == "NetworkPolicy"
        and p["metadata"].get("namespace", pod.namespace) == pod.namespace
        and direction in policy_types(p)
        and selector_matches(p["spec"].get("podSelector"), pod.labels)
    ]


def _rules_allow(
    selecting: Sequence[Mapping[str, Any]],
    rules_key: str,
    peers_key: str,
    peer: Endpoint,
    port: Port,
    semantics: Semantics,
) -> bool:
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"].get("namespace")
        for rule in policy["spec"].get(rules_key) or []:
            peers, ports = rule.get(peers_key) or [], rule.get("ports") or []
            if peers and not any(peer_matches(p, namespace, peer, semantics) for p in peers):
                continue
            if ports and not any(port_matches(p, port) for p in ports):
                continue
            return True
    return False


def ingress_allowed(
    policies: Iterable[Mapping[str, Any]],
    *,
    target: Pod,
    source: Endpoint,
    port: Port,
    semantics: Semantics = STANDARD,
) -> bool:
    """Whether ``target`` admits a connection from ``source`` on ``port`` under ``policies``
    (every NetworkPolicy of the cluster, or at least those of the target's namespace; a
    policy without ``metadata.namespace`` is taken to be in the target's)."""
    selecting = [
        {**p, "metadata": {**p["metadata"], "namespace": target.namespace}}
        for p in _selecting(policies, target, "Ingress")
    ]
    return _rules_allow(selecting, "ingress", "from", source, port, semantics)


def egress_allowed(
    policies: Iterable[Mapping[str, Any]],
    *,
    source: Pod,
    target: Endpoint,
    port: Port,
    semantics: Semantics = STANDARD,
) -> bool:
    """Whether ``source`` may open a connection to ``target`` on ``port`` under
    ``policies`` (as ``ingress_allowed``, for the source's namespace). ``port`` is the
    target pod's port (after a Service's translation), its ``name`` the target container's
    name for it (named ports in egress rules are the target's)."""
    selecting = [
        {**p, "metadata": {**p["metadata"], "namespace": source.namespace}}
        for p in _selecting(policies, source, "Egress")
    ]
    return _rules_allow(selecting, "egress", "to", target, port, semantics)


def connection_allowed(
    policies: Iterable[Mapping[str, Any]],
    *,
    source: Endpoint,
    target: Endpoint,
    port: Port,
    semantics: Semantics = STANDARD,
) -> bool:
    """Whether a connection from ``source`` to ``target`` on ``port`` is made: the source
    pod's egress and the target pod's ingress both allow it (an address that is no pod has
    no policy of its own)."""
    policies = list(policies)
    if isinstance(source, Pod) and not egress_allowed(
        policies, source=source, target=target, port=port, semantics=semantics
    ):
        return False
    return not isinstance(target, Pod) or ingress_allowed(
        policies, target=target, source=source, port=port, semantics=semantics
    )
