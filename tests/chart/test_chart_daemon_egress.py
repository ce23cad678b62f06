"""Every daemon pod of the release that runs build steps (the BuildKit Deployment of
``buildkit``, the DaemonSet of ``dind``) is kept by the chart's own NetworkPolicies, as
rendered by default, off the cluster's private addresses and the cloud metadata address,
and reaches the internet: a build step's connections leave through its daemon's pod
(docs/kubernetes.md, "What a build step can reach"). Judged by testkit.network_policy's
standard reading, which tests/cluster/test_network_policy.py holds to the test cluster's
enforcer; the build steps themselves meet the policies in
tests/cluster/test_unprivileged_builders.py."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.network_policy import STANDARD, Address, Pod, Port, egress_allowed

from . import test_chart_static as static
from .test_chart_static import NAMESPACE, Render

render = static.render  # a fixture of the static tests (helm is in conftest.py)

TARGETS = {
    # name: (address, port, reached)
    "internet": ("203.0.113.10", 80, True),
    "metadata": ("169.254.169.254", 80, False),
    "kubernetes-api": ("10.96.0.1", 443, False),
    "hub": ("10.244.0.7", 8081, False),
    "node": ("192.168.1.10", 10250, False),
    "service": ("172.20.0.9", 8080, False),
}


def daemons(docs: list[dict[str, Any]]) -> dict[str, Pod]:
    """The pods of the release's Deployments and DaemonSets other than the service's own."""
    return {
        d["metadata"]["name"]: Pod(NAMESPACE, d["spec"]["template"]["metadata"]["labels"])
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet")
        and d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        != "service"
    }


@pytest.mark.parametrize("builder", ["buildkit", "dind"])
def test_a_daemon_that_runs_build_steps_reaches_the_internet_and_nothing_private(
    render: Render, builder: str
) -> None:
    docs = render("--set", f"builder.type={builder}")
    pods = daemons(docs)
    assert pods, f"{builder}: no daemon rendered"
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for name, pod in pods.items():
        seen = {
            target: egress_allowed(
                policies, source=pod, target=Address(ip), port=Port(port), semantics=STANDARD
            )
            for target, (ip, port, _) in TARGETS.items()
        }
        assert seen == {t: reached for t, (_, _, reached) in TARGETS.items()}, name


def test_a_daemons_egress_rules_add_what_the_operator_names(render: Render) -> None:
    rule = '[{"to": [{"ipBlock": {"cidr": "10.0.5.5/32"}}], "ports": [{"port": 5000}]}]'
    docs = render("--set", "builder.type=dind", "--set-json", f"networkPolicy.dind.egress={rule}")
    (pod,) = daemons(docs).values()
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    registry = egress_allowed(policies, source=pod, target=Address("10.0.5.5"), port=Port(5000))
    other = egress_allowed(policies, source=pod, target=Address("10.0.5.5"), port=Port(22))
    assert (registry, other) == (True, False)
