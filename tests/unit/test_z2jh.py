"""zero-to-jupyterhub as facts (testkit.z2jh, issue 22): the walkthrough's z2jh values use only
documented options, and the NetworkPolicies follow z2jh's documented rules."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from testkit import z2jh
from testkit.network_policy import Pod, Port, ingress_allowed
from tests.conftest import ROOT

JHUB_VALUES = ROOT / "docs" / "walkthrough" / "jhub-values.yaml"


def test_the_walkthroughs_hub_values_use_only_documented_z2jh_options() -> None:
    values = yaml.safe_load(JHUB_VALUES.read_text())
    paths = z2jh.option_paths(values)
    assert "hub.services.binder.apiToken" in paths  # the walkthrough's own, found
    assert "hub.networkPolicy.interNamespaceAccessLabels" in paths
    assert z2jh.undocumented(values) == []


@pytest.mark.parametrize(
    ("values", "found"),
    [
        ({"hub": {"service": {"binder": {"url": "x"}}}}, ["hub.service.binder.url"]),
        ({"hub": {"services": {"binder": {"apitoken": "x"}}}}, ["hub.services.binder.apitoken"]),
        ({"imagePullSecrets": [], "imagePullSecret": {"create": True, "user": "x"}},
         ["imagePullSecret.user"]),
        ({"hub": {"networkPolicy": {"interNamespaceAccessLabel": "accept"}}},
         ["hub.networkPolicy.interNamespaceAccessLabel"]),
    ],
    ids=["services-misspelt", "api-token-case", "pull-secret-key", "network-policy-key"],
)  # fmt: skip
def test_a_misspelt_option_is_found(values: dict[str, Any], found: list[str]) -> None:
    assert z2jh.undocumented(values) == found


def test_a_free_form_option_is_a_leaf_and_an_empty_mapping_too() -> None:
    values = {"hub": {"extraConfig": {"snippet": "c.X = 1"}, "loadRoles": {}}}
    assert z2jh.option_paths(values) == ["hub.extraConfig.snippet", "hub.loadRoles"]
    assert z2jh.undocumented({"singleuser": {"extraLabels": {"a.b/c": "d"}}}) == []


HUB = Pod("jhub", {**z2jh.match_labels("hub", "jhub"), **z2jh.POD_ACCESS_LABELS["hub"]})
PROXY = Pod("jhub", {**z2jh.match_labels("proxy", "jhub"), **z2jh.POD_ACCESS_LABELS["proxy"]})
USER = Pod(
    "jhub", {**z2jh.match_labels("singleuser-server", "jhub"), **z2jh.SINGLEUSER_EXTRA_LABELS}
)
HUB_API = Port(z2jh.HUB_PORT, "http")


def policies(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**p, "metadata": {**p["metadata"], "namespace": "jhub"}}
        for p in z2jh.network_policies(values, "jhub")
    ]


def test_the_hub_admits_its_proxy_and_user_pods_and_no_unlabelled_pod() -> None:
    defaults = policies({})
    assert [p["metadata"]["name"] for p in defaults] == ["hub", "proxy", "singleuser"]
    assert ingress_allowed(defaults, target=HUB, source=PROXY, port=HUB_API)
    assert ingress_allowed(defaults, target=HUB, source=USER, port=HUB_API)
    assert not ingress_allowed(defaults, target=HUB, source=Pod("jhub", {}), port=HUB_API)
    # the proxy's public port is open to anyone (allowedIngressPorts: [http, https]) ...
    http = Port(z2jh.PROXY_HTTP_PORT, "http")
    assert ingress_allowed(defaults, target=PROXY, source=Pod("elsewhere", {}), port=http)
    # ... its API only to labelled pods: the hub
    api = Port(z2jh.PROXY_API_PORT, "api")
    assert ingress_allowed(defaults, target=PROXY, source=HUB, port=api)
    assert not ingress_allowed(defaults, target=PROXY, source=USER, port=api)


def test_labelled_pods_of_other_namespaces_need_accept() -> None:
    elsewhere = Pod("binder", {f"{z2jh.ACCESS}hub": "true"})
    labelled_namespace = Pod("binder", {}, {f"{z2jh.ACCESS}hub": "true"})
    assert not ingress_allowed(policies({}), target=HUB, source=elsewhere, port=HUB_API)
    accept = policies({"hub": {"networkPolicy": {"interNamespaceAccessLabels": "accept"}}})
    assert ingress_allowed(accept, target=HUB, source=elsewhere, port=HUB_API)
    assert ingress_allowed(accept, target=HUB, source=labelled_namespace, port=HUB_API)
    assert not ingress_allowed(accept, target=HUB, source=Pod("binder", {}), port=HUB_API)


def test_egress_allow_rules_follow_the_documented_defaults() -> None:
    def rules(component: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        (policy,) = [
            p for p in z2jh.network_policies(values, "r") if p["metadata"]["name"] == component
        ]
        return list(policy["spec"]["egress"])

    def cidrs(egress: list[dict[str, Any]]) -> set[str]:
        return {
            peer["ipBlock"]["cidr"] for r in egress for peer in r.get("to", []) if "ipBlock" in peer
        }

    # user pods: no private ranges, no metadata server beyond its DNS port, by default
    user = rules("singleuser", {})
    assert {"to": [{"ipBlock": {"cidr": c}} for c in z2jh.PRIVATE_RANGES]} not in user
    assert {"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]} not in user
    hub = rules("hub", {})
    assert {"to": [{"ipBlock": {"cidr": c}} for c in z2jh.PRIVATE_RANGES]} in hub
    # a rule turned off is gone; an extra rule is added
    extra = {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}
    changed = rules("hub", {"hub": {"networkPolicy": {
        "egressAllowRules": {"privateIPs": False, "nonPrivateIPs": False}, "egress": [extra],
    }}})  # fmt: skip
    assert "0.0.0.0/0" in cidrs(hub)
    assert "0.0.0.0/0" not in cidrs(changed)
    assert extra in changed
    off = z2jh.network_policies({"hub": {"networkPolicy": {"enabled": False}}}, "r")
    assert [p["metadata"]["name"] for p in off] == ["proxy", "singleuser"]
