"""testkit.network_policy against literal policies, one Kubernetes rule per test."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.network_policy import (
    Pod,
    Port,
    UnsupportedSelector,
    ingress_allowed,
    peer_matches,
    port_matches,
    selector_matches,
)

HUB = Pod("jhub", {"component": "hub", "app": "jupyterhub"})
HTTP = Port(8081, "http")


def policy(ingress: list[dict[str, Any]] | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"podSelector": {"matchLabels": {"component": "hub"}}, **spec}
    if ingress is not None:
        body["ingress"] = ingress
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": "hub", "namespace": "jhub"},
        "spec": body,
    }


def test_selectors() -> None:
    labels = {"a": "1", "b": "2"}
    assert selector_matches(None, labels)
    assert selector_matches({}, labels)
    assert selector_matches({"matchLabels": {}}, labels)
    assert selector_matches({"matchLabels": {"a": "1"}}, labels)
    assert not selector_matches({"matchLabels": {"a": "1", "c": "3"}}, labels)
    assert not selector_matches({"matchLabels": {"a": "2"}}, labels)
    expressions = [
        ({"key": "a", "operator": "In", "values": ["1", "9"]}, True),
        ({"key": "a", "operator": "In", "values": ["9"]}, False),
        ({"key": "c", "operator": "In", "values": ["1"]}, False),
        ({"key": "a", "operator": "NotIn", "values": ["9"]}, True),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, False),
        ({"key": "c", "operator": "NotIn", "values": ["1"]}, True),
        ({"key": "b", "operator": "Exists"}, True),
        ({"key": "c", "operator": "Exists"}, False),
        ({"key": "c", "operator": "DoesNotExist"}, True),
        ({"key": "b", "operator": "DoesNotExist"}, False),
    ]
    for expression, expected in expressions:
        assert selector_matches({"matchExpressions": [expression]}, labels) is expected, expression
    both = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "c", "operator": "Exists"}]}
    assert not selector_matches(both, labels)
    with pytest.raises(UnsupportedSelector, match="'Gt'"):
        selector_matches({"matchExpressions": [{"key": "a", "operator": "Gt"}]}, labels)


def test_peers_pod_namespace_and_both() -> None:
    near = Pod("jhub", {"role": "x"})
    far = Pod("binder", {"role": "x"}, {"team": "b"})
    only_pods = {"podSelector": {"matchLabels": {"role": "x"}}}
    assert peer_matches(only_pods, "jhub", near)
    assert not peer_matches(only_pods, "jhub", far)  # podSelector alone: own namespace only
    all_namespaces = {**only_pods, "namespaceSelector": {}}
    assert peer_matches(all_namespaces, "jhub", far)
    only_namespaces = {"namespaceSelector": {"matchLabels": {"team": "b"}}}
    assert peer_matches(only_namespaces, "jhub", far)
    assert not peer_matches(only_namespaces, "jhub", near)
    by_name = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "binder"}}}
    assert peer_matches(by_name, "jhub", far)
    both = {**only_namespaces, "podSelector": {"matchLabels": {"role": "y"}}}
    assert not peer_matches(both, "jhub", far)
    assert not peer_matches({"ipBlock": {"cidr": "0.0.0.0/0"}}, "jhub", far)


def test_ports_by_number_range_name_and_protocol() -> None:
    assert port_matches({}, HTTP)
    assert port_matches({"port": 8081}, HTTP)
    assert port_matches({"port": "8081"}, HTTP)
    assert port_matches({"port": "http"}, HTTP)
    assert not port_matches({"port": "metrics"}, HTTP)
    assert not port_matches({"port": 8000}, HTTP)
    assert port_matches({"port": 8000, "endPort": 9000}, HTTP)
    assert not port_matches({"port": 8081, "protocol": "UDP"}, HTTP)


def test_a_pod_no_policy_selects_admits_everyone() -> None:
    stranger = Pod("elsewhere")
    assert ingress_allowed([], target=HUB, source=stranger, port=HTTP)
    other_pod = policy([], podSelector={"matchLabels": {"component": "proxy"}})
    assert ingress_allowed([other_pod], target=HUB, source=stranger, port=HTTP)
    other_namespace = {**policy([]), "metadata": {"name": "hub", "namespace": "other"}}
    assert ingress_allowed([other_namespace], target=HUB, source=stranger, port=HTTP)
    egress_only = policy(None, policyTypes=["Egress"])
    assert ingress_allowed([egress_only], target=HUB, source=stranger, port=HTTP)


def test_a_selecting_policy_admits_only_what_a_rule_allows() -> None:
    labelled = Pod("binder", {"hub.jupyter.org/network-access-hub": "true"})
    plain = Pod("binder", {"app": "binderhub-service"})
    rule = {
        "ports": [{"port": "http"}],
        "from": [
            {
                "podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}},
                "namespaceSelector": {"matchLabels": {}},
            }
        ],
    }
    policies = [policy([rule])]
    assert ingress_allowed(policies, target=HUB, source=labelled, port=HTTP)
    assert not ingress_allowed(policies, target=HUB, source=plain, port=HTTP)
    assert not ingress_allowed(policies, target=HUB, source=labelled, port=Port(9090, "metrics"))
    assert not ingress_allowed([policy([])], target=HUB, source=labelled, port=HTTP)
    # rules and policies add up
    everyone = policy([{"ports": [{"port": 8081}]}])
    assert ingress_allowed([*policies, everyone], target=HUB, source=plain, port=HTTP)
    assert ingress_allowed([policy([rule, {}])], target=HUB, source=plain, port=HTTP)
