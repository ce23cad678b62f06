"""May the service's pods reach zero-to-jupyterhub's hub API (issue 14, item 3), and the
hub and its proxy the service, on a network plugin that reads ipBlock as Cilium does
(issue 23)?

z2jh's hub NetworkPolicy is on by default and admits only labelled pods; its hub and proxy
reach private addresses by ipBlock rules, which Cilium never matches against pods. This
decides it by code for values the test cluster does not run: z2jh's policies as its
documentation describes them (``testkit.z2jh``, our own data since issue 22) for the hub's
values, this chart rendered by the real helm, and both sides' rules evaluated
(``testkit.network_policy``) between the pods, under the standard reading of ipBlock and
Cilium's. tests/cluster/test_network_policy.py holds the standard reading to an enforcing
cluster. The hub runs in ``jhub``, the service in ``binder``, as in docs/walkthrough.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit import z2jh
from testkit.network_policy import (
    CILIUM,
    STANDARD,
    Pod,
    Port,
    Semantics,
    connection_allowed,
    ingress_allowed,
)

from .test_chart_static import CHART, SERVICE, one, run_helm

HUB_NAMESPACE, SERVICE_NAMESPACE = "jhub", "binder"

HUB_VALUES: dict[str, Any] = {
    "hub": {
        "services": {
            "binder": {
                "url": f"http://binderhub-service.{SERVICE_NAMESPACE}.svc.cluster.local",
                "apiToken": "0" * 64,
            }
        },
    }
}
"""The walkthrough's hub values, as far as they concern the network."""

ACCEPT_LABELS = {"hub": {"networkPolicy": {"interNamespaceAccessLabels": "accept"}}}
"""docs/jupyterhub-auth.md, "A hub in another namespace": labelled pods of any namespace."""

BY_NAMESPACE = {
    "hub": {
        "networkPolicy": {
            "ingress": [
                {
                    "ports": [{"port": "http"}],
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": SERVICE_NAMESPACE}
                            },
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "binderhub-service"}
                            },
                        }
                    ],
                }
            ]
        }
    }
}
"""The same page's alternative: the service's pods of its namespace, by selector."""


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def rendered(
    helm: str, chart: Path, release: str, namespace: str, values: dict[str, Any], tmp: Path
) -> list[dict[str, Any]]:
    path = tmp / f"{release}-values.yaml"
    path.write_text(yaml.safe_dump(values))
    # the chart as released (RELEASED first, then the test's values)
    result = run_helm(
        helm, "template", release, str(chart), "--namespace", namespace, "-f", str(path)
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def service_reaches_hub(
    helm: str, tmp: Path, hub_values: dict[str, Any], service_values: dict[str, Any]
) -> bool:
    policies = [
        {**p, "metadata": {**p["metadata"], "namespace": HUB_NAMESPACE}}
        for p in z2jh.network_policies(hub_values, release="jhub")
    ]
    hub_labels = {**z2jh.match_labels("hub", "jhub"), **z2jh.POD_ACCESS_LABELS["hub"]}
    ours = rendered(helm, CHART, "binderhub-service", SERVICE_NAMESPACE, service_values, tmp)
    service_pod = one(ours, "Deployment", "binderhub-service")["spec"]["template"]
    return ingress_allowed(
        policies,
        target=Pod(HUB_NAMESPACE, hub_labels),
        source=Pod(SERVICE_NAMESPACE, service_pod["metadata"]["labels"]),
        port=Port(z2jh.HUB_PORT, "http"),
    )


@pytest.mark.parametrize(
    ("hub_values", "service_values", "reaches"),
    [
        # z2jh's default admits labelled pods of the hub's own namespace only
        (HUB_VALUES, {}, False),
        (merged(HUB_VALUES, ACCEPT_LABELS), {}, True),
        (merged(HUB_VALUES, ACCEPT_LABELS), {"hubNetworkAccess": False}, False),
        (merged(HUB_VALUES, BY_NAMESPACE), {"hubNetworkAccess": False}, True),
        (merged(HUB_VALUES, BY_NAMESPACE, ACCEPT_LABELS), {}, True),
        # NetworkPolicies off in z2jh: nothing to pass
        (merged(HUB_VALUES, {"hub": {"networkPolicy": {"enabled": False}}}), {}, True),
    ],
    ids=[
        "z2jh-defaults",
        "accept-labels",
        "accept-labels-label-off",
        "namespace-selector",
        "both",
        "policies-off",
    ],
)
def test_the_service_reaches_the_hub_only_as_the_docs_say(
    helm: str,
    tmp_path: Path,
    hub_values: dict[str, Any],
    service_values: dict[str, Any],
    reaches: bool,
) -> None:
    assert service_reaches_hub(helm, tmp_path, hub_values, service_values) is reaches


def test_the_service_pods_carry_the_hub_access_label_by_default(helm: str, tmp_path: Path) -> None:
    labels = one(rendered(helm, CHART, "rel", "binder", {}, tmp_path), "Deployment", SERVICE)[
        "spec"
    ]["template"]["metadata"]["labels"]
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    off = rendered(helm, CHART, "rel", "binder", {"hubNetworkAccess": False}, tmp_path)
    assert (
        "hub.jupyter.org/network-access-hub"
        not in (one(off, "Deployment", SERVICE)["spec"]["template"]["metadata"]["labels"])
    )


DOCS = Path(__file__).resolve().parents[2] / "docs"
WALKTHROUGH_HUB = yaml.safe_load((DOCS / "walkthrough" / "jhub-values.yaml").read_text())
CILIUM_HUB = yaml.safe_load((DOCS / "clouds" / "jhub-cilium-values.yaml").read_text())
"""docs/walkthrough's z2jh values, and what docs/jupyterhub-auth.md adds to them on Cilium."""

HUB_IP, PROXY_IP, SERVICE_IP = "10.244.1.3", "10.244.1.4", "10.244.1.8"


def pods_and_policies(
    helm: str, tmp: Path, hub_values: dict[str, Any]
) -> tuple[dict[str, Pod], list[dict[str, Any]]]:
    """The hub's, the proxy's and the service's pods, and every policy of both releases."""
    policies = [
        {**p, "metadata": {**p["metadata"], "namespace": HUB_NAMESPACE}}
        for p in z2jh.network_policies(hub_values, release="jhub")
    ]
    ours = rendered(helm, CHART, "binderhub-service", SERVICE_NAMESPACE, {}, tmp)
    policies += [
        {**d, "metadata": {**d["metadata"], "namespace": SERVICE_NAMESPACE}}
        for d in ours
        if d["kind"] == "NetworkPolicy"
    ]
    service = one(ours, "Deployment", "binderhub-service")["spec"]["template"]["metadata"]
    pods = {
        "hub": Pod(
            HUB_NAMESPACE,
            {**z2jh.match_labels("hub", "jhub"), **z2jh.POD_ACCESS_LABELS["hub"]},
            ip=HUB_IP,
        ),
        "proxy": Pod(
            HUB_NAMESPACE,
            {**z2jh.match_labels("proxy", "jhub"), **z2jh.POD_ACCESS_LABELS["proxy"]},
            ip=PROXY_IP,
        ),
        "service": Pod(SERVICE_NAMESPACE, service["labels"], ip=SERVICE_IP),
    }
    return pods, policies


@pytest.mark.parametrize(
    ("hub_values", "semantics", "reaches"),
    [
        (WALKTHROUGH_HUB, STANDARD, True),
        # the walkthrough's values alone on Cilium: z2jh's ipBlock rules match no pod
        (WALKTHROUGH_HUB, CILIUM, False),
        (merged(WALKTHROUGH_HUB, CILIUM_HUB), CILIUM, True),
        (merged(WALKTHROUGH_HUB, CILIUM_HUB), STANDARD, True),
    ],
    ids=["walkthrough", "walkthrough-on-cilium", "docs-cilium-values", "cilium-values-elsewhere"],
)
def test_the_hub_and_its_proxy_reach_the_service_as_the_docs_say(
    helm: str, tmp_path: Path, hub_values: dict[str, Any], semantics: Semantics, reaches: bool
) -> None:
    assert z2jh.undocumented(hub_values) == []
    pods, policies = pods_and_policies(helm, tmp_path, hub_values)
    http = Port(8080, "http")  # the chart's containerPort, behind its Service's port 80
    for client in ("hub", "proxy"):
        allowed = connection_allowed(
            policies, source=pods[client], target=pods["service"], port=http, semantics=semantics
        )
        assert allowed is reaches, client
    # and the service reaches the hub's API, by the access label, whatever the plugin
    assert connection_allowed(
        policies,
        source=pods["service"],
        target=pods["hub"],
        port=Port(z2jh.HUB_PORT, "http"),
        semantics=semantics,
    )
