"""testkit.network_policy against literal policies, one Kubernetes rule per test."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.network_policy import (
    CILIUM,
    STANDARD,
    Address,
    Pod,
    Port,
    UnsupportedSelector,
    connection_allowed,
    egress_allowed,
    in_block,
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


PRIVATE = {"ipBlock": {"cidr": "10.0.0.0/8"}}
PUBLIC = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.0.0/16"]}}


def test_ip_blocks_and_their_exceptions() -> None:
    assert in_block(PRIVATE["ipBlock"], "10.1.2.3")
    assert not in_block(PRIVATE["ipBlock"], "11.1.2.3")
    assert in_block(PUBLIC["ipBlock"], "203.0.113.7")
    assert not in_block(PUBLIC["ipBlock"], "10.1.2.3")
    assert not in_block(PUBLIC["ipBlock"], "169.254.169.254")


def test_ip_blocks_match_pods_and_nodes_except_under_cilium() -> None:
    pod = Pod("binder", {"a": "1"}, ip="10.244.1.7")
    node = Address("10.0.0.4", node=True)
    outside_private = Address("10.9.9.9")  # a private-endpoint registry, outside the cluster
    for endpoint in (pod, node, outside_private):
        assert peer_matches(PRIVATE, "jhub", endpoint, STANDARD), endpoint
    assert not peer_matches(PRIVATE, "jhub", pod, CILIUM)
    assert not peer_matches(PRIVATE, "jhub", node, CILIUM)
    assert peer_matches(PRIVATE, "jhub", outside_private, CILIUM)
    assert not peer_matches(PRIVATE, "jhub", Pod("binder"), STANDARD)  # no address known
    # selectors name pods only, never addresses
    assert not peer_matches({"namespaceSelector": {}}, "jhub", outside_private)
    assert peer_matches({"namespaceSelector": {}}, "jhub", pod, CILIUM)


def egress_policy(egress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": "builds", "namespace": "binder"},
        "spec": {
            "podSelector": {"matchLabels": {"component": "build"}},
            "policyTypes": ["Egress"],
            "egress": egress,
        },
    }


def test_egress_of_a_selected_pod() -> None:
    build = Pod("binder", {"component": "build"}, ip="10.244.1.9")
    other = Pod("binder", {"component": "service"}, ip="10.244.1.8")
    hub = Pod("jhub", {"component": "hub"}, ip="10.244.1.3")
    registry = Address("203.0.113.5")
    metadata = Address("169.254.169.254")
    policies = [egress_policy([{"to": [PUBLIC]}])]
    https = Port(443)
    assert egress_allowed(policies, source=build, target=registry, port=https)
    assert not egress_allowed(policies, source=build, target=metadata, port=Port(80))
    assert not egress_allowed(policies, source=build, target=hub, port=HTTP)
    assert egress_allowed(policies, source=other, target=hub, port=HTTP)  # not selected
    to_hub = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"component": "hub"}}}]
    }
    named = {**to_hub, "ports": [{"port": "http"}]}
    assert egress_allowed([egress_policy([named])], source=build, target=hub, port=HTTP)
    assert not egress_allowed([egress_policy([named])], source=build, target=hub, port=Port(8081))
    assert not egress_allowed([egress_policy([])], source=build, target=registry, port=https)
    # a connection needs the source's egress and the target's ingress
    admits_nobody = policy([])
    assert not connection_allowed(
        [egress_policy([to_hub]), admits_nobody], source=build, target=hub, port=HTTP
    )
    assert connection_allowed([egress_policy([to_hub])], source=build, target=hub, port=HTTP)
    assert connection_allowed([], source=registry, target=hub, port=HTTP)
