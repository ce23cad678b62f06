"""Does a NetworkPolicy let one pod connect to another? Decided by code, for clusters whose
network plugin does not enforce policies (the test cluster's bridge CNI does not).

Pure functions over manifests as dicts. The rules are Kubernetes' (NetworkPolicy reference,
https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- a pod no Ingress policy of its namespace selects admits every connection; once one does,
  only what some rule of those policies allows is admitted (rules add up, never subtract);
- a rule with no ``from`` (or an empty one) admits every source; with no ``ports``, every port;
- a peer with only ``podSelector`` means pods of the policy's own namespace; with only
  ``namespaceSelector``, every pod of the matching namespaces; with both, the matching pods of
  the matching namespaces. An empty selector (``{}``) matches everything;
- ``matchLabels`` and ``matchExpressions`` (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``)
  must all hold.

``ipBlock`` peers name addresses, not labels: they never match here (a source known only by
labels is not inside any block that this code could check).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its labels and its namespace's name and labels.

    Kubernetes labels every namespace ``kubernetes.io/metadata.name: <name>``; that label is
    added here, so ``namespace_labels`` need only hold the others."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, "kubernetes.io/metadata.name": self.namespace}


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


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, source: Pod) -> bool:
    """Whether one ``from`` entry of a policy in ``policy_namespace`` names ``source``."""
    if "ipBlock" in peer:
        return False
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = source.namespace == policy_namespace
    else:
        in_namespace = selector_matches(namespaces, source.all_namespace_labels())
    return in_namespace and selector_matches(pods, source.labels)


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


def ingress_allowed(
    policies: Iterable[Mapping[str, Any]], *, target: Pod, source: Pod, port: Port
) -> bool:
    """Whether ``source`` may connect to ``target`` on ``port`` under ``policies`` (every
    NetworkPolicy of the cluster, or at least those of the target's namespace; a policy
    without ``metadata.namespace`` is taken to be in the target's)."""
    selecting = [
        p
        for p in policies
        if p.get("kind", "NetworkPolicy") == "NetworkPolicy"
        and p["metadata"].get("namespace", target.namespace) == target.namespace
        and "Ingress" in policy_types(p)
        and selector_matches(p["spec"].get("podSelector"), target.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            peers, ports = rule.get("from") or [], rule.get("ports") or []
            if peers and not any(peer_matches(p, target.namespace, source) for p in peers):
                continue
            if ports and not any(port_matches(p, port) for p in ports):
                continue
            return True
    return False
