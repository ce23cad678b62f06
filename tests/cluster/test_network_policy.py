"""NetworkPolicies enforced in the test cluster (issue 23): this chart's policies, as helm
renders them by default, and zero-to-jupyterhub's, as testkit.z2jh writes them from its
documentation for the walkthrough's hub values, applied to pods that carry each component's
labels and listen on its ports, and every connection that matters tried from inside a pod.

kube-router's network policy controller enforces them (tests/cluster/up.sh). Each outcome
is also asked of testkit.network_policy under its standard reading: the evaluator that
decides what the cluster cannot run (Cilium's reading, other values) is held to a real
enforcer here. The cloud metadata service and an address on the internet are listeners on
the node (enforcement.node_stand_ins).

The build pods and the BuildKit daemon here are pods with their labels; builds themselves
meet the policies in test_walkthrough.py (a build step's connections) and every chart test
that builds.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from testkit import z2jh
from testkit.network_policy import STANDARD, Address, Endpoint, Pod, Port, connection_allowed

from . import enforcement
from .conftest import NAMESPACE_LABEL, REPO_DIR, Helpers

pytestmark = pytest.mark.cluster

CHART = REPO_DIR / "chart"
RELEASED = REPO_DIR / "tests" / "chart" / "released-values.yaml"
WALKTHROUGH_HUB = yaml.safe_load((REPO_DIR / "docs/walkthrough/jhub-values.yaml").read_text())
RELEASE = "bhs"
API_SERVER = Address("10.244.0.1", node=True)  # the kubernetes Service's endpoint (up.sh)
API_URL = "https://10.96.0.1:443/"

LISTEN = (
    "exec perl -MIO::Socket::INET -e '"
    "my @s = map { IO::Socket::INET->new(LocalPort => $_, Listen => 16, ReuseAddr => 1)"
    ' or die "$_: $!" } @ARGV; $_->blocking(0) for @s;'
    " while (1) { for my $s (@s) { my $c = $s->accept or next; $c->blocking(1);"
    " while (my $l = <$c>) { last if $l =~ /^\\r?$/ }"
    ' print $c "HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n"; close $c }'
    " select(undef, undef, undef, 0.05) }' -- "
)
"""A shell command that answers HTTP on the ports that follow it (perl-base is in every
Debian image; the tools image has no Python)."""


def listener(name: str, image: str, labels: dict[str, str], ports: dict[str, int]) -> Any:
    """A pod with ``labels`` answering HTTP on named container ``ports``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", LISTEN + " ".join(str(p) for p in ports.values())],
                    "ports": [{"name": n, "containerPort": p} for n, p in ports.items()],
                    "readinessProbe": {
                        "tcpSocket": {"port": next(iter(ports.values()))},
                        "periodSeconds": 1,
                    },
                }
            ],
        },
    }


def chart_policies(helm: str, namespace: str) -> list[dict[str, Any]]:
    """This chart's NetworkPolicies as a default release renders them (builder: buildkit)."""
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", namespace, "-f", str(RELEASED)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    return docs


def labels_of(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    (deployment,) = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


@pytest.fixture
def hub_namespace(core_v1: client.CoreV1Api, namespace: str) -> Iterator[str]:
    name = f"{namespace}-hub"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={NAMESPACE_LABEL: "true"})
        )
    )
    try:
        yield name
    finally:
        with contextlib.suppress(client.ApiException):
            core_v1.delete_namespace(name)


def test_the_charts_and_z2jhs_policies_hold_in_the_cluster_as_the_evaluator_reads_them(
    helm: str,
    kubeconfig: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    namespace: str,
    hub_namespace: str,
    tools_image: str,
    kube: type[Helpers],
) -> None:
    ours = chart_policies(helm, namespace)
    theirs = [
        {**p, "metadata": {**p["metadata"], "namespace": hub_namespace}}
        for p in z2jh.network_policies(WALKTHROUGH_HUB, release="jhub")
    ]
    build_labels = {
        "app.kubernetes.io/managed-by": "binderhub-service",
        "app.kubernetes.io/instance": f"{RELEASE}-binderhub-service",
        "app.kubernetes.io/component": "build",
    }
    pods = {
        # name: (namespace, labels, named ports)
        "hub": (
            hub_namespace,
            {**z2jh.match_labels("hub", "jhub"), **z2jh.POD_ACCESS_LABELS["hub"]},
            {"http": z2jh.HUB_PORT},
        ),
        "service": (namespace, labels_of(ours, "service"), {"http": 8080}),
        "buildkitd": (namespace, labels_of(ours, "buildkit"), {"buildkit": 1234}),
        "build": (namespace, build_labels, {"probe": 8000}),
        "stranger": (namespace, {"app": "stranger"}, {"probe": 8000}),
    }
    for name, (ns, labels, ports) in pods.items():
        core_v1.create_namespaced_pod(ns, listener(name, tools_image, labels, ports))
    networking = client.NetworkingV1Api(api_client)
    for policy in ours + theirs:
        if policy["kind"] == "NetworkPolicy":
            body: Any = policy  # the client takes a dict where it types a V1NetworkPolicy
            networking.create_namespaced_network_policy(policy["metadata"]["namespace"], body)
    ips: dict[str, str] = {}
    for name, (ns, _, _) in pods.items():
        kube.wait_for_pod_phase(core_v1, ns, name, {"Running"})

        def ready(ns: str = ns, name: str = name) -> bool:
            statuses = core_v1.read_namespaced_pod(name, ns).status.container_statuses
            return all(c.ready for c in statuses or [])

        kube.wait_for(ready, timeout=60, what=f"{name} ready")
        ips[name] = str(core_v1.read_namespaced_pod(name, ns).status.pod_ip)
    enforcement.wait_enforced((ns, name) for name, (ns, _, _) in pods.items())
    endpoints: dict[str, Endpoint] = {
        name: Pod(ns, labels, ip=ips[name]) for name, (ns, labels, _) in pods.items()
    }
    policies = [p for p in ours + theirs if p["kind"] == "NetworkPolicy"]

    with enforcement.node_stand_ins(f"canary-{uuid.uuid4().hex[:8]}") as node:
        targets: dict[str, tuple[Endpoint, Port, str]] = {
            name: (endpoints[name], Port(port, port_name), f"http://{ips[name]}:{port}/")
            for name, (_, _, named) in pods.items()
            for port_name, port in named.items()
        }
        targets["metadata"] = (Address(enforcement.METADATA_IP), Port(80), node.metadata_url)
        targets["internet"] = (Address(enforcement.INTERNET_IP), Port(80), node.internet_url)
        targets["kubernetes-api"] = (API_SERVER, Port(6443), API_URL)
        expected = {
            # z2jh's hub admits labelled pods of other namespaces (interNamespaceAccessLabels)
            ("service", "hub"): True,
            ("stranger", "hub"): False,
            # z2jh's hub may reach private addresses; the service admits anyone on its port
            ("hub", "service"): True,
            # build pods: nobody connects to them; they reach the daemon, the internet, and
            # neither the hub, the metadata service nor the Kubernetes API
            ("stranger", "build"): False,
            ("build", "buildkitd"): True,
            ("build", "internet"): True,
            ("build", "hub"): False,
            ("build", "metadata"): False,
            ("build", "kubernetes-api"): False,
            # build steps run in the daemon's network
            ("stranger", "buildkitd"): False,
            ("buildkitd", "internet"): True,
            ("buildkitd", "hub"): False,
            ("buildkitd", "service"): False,  # nor this service, which admits anyone
            ("buildkitd", "metadata"): False,
            ("buildkitd", "kubernetes-api"): False,
            # nothing selects the stranger: the listeners answer, the API too
            ("stranger", "metadata"): True,
            ("stranger", "internet"): True,
            ("stranger", "kubernetes-api"): True,
        }
        observed: dict[tuple[str, str], bool] = {}
        for (source, target), allowed in expected.items():
            endpoint, port, url = targets[target]
            assert (
                connection_allowed(
                    policies,
                    source=endpoints[source],
                    target=endpoint,
                    port=port,
                    semantics=STANDARD,
                )
                is allowed
            ), f"the evaluator reads {source} -> {target} otherwise"
            ns = pods[source][0]
            # kube-router applies what it sees within a sync or two: ask until it agrees,
            # or until the deadline says it never will

            def agrees(
                ns: str = ns, source: str = source, url: str = url, allowed: bool = allowed
            ) -> bool:
                return enforcement.reaches(kubeconfig, ns, source, url) is allowed

            try:
                kube.wait_for(
                    agrees,
                    timeout=30,
                    what=f"{source} -> {target} to be {'allowed' if allowed else 'refused'}",
                    interval=1,
                )
                observed[(source, target)] = allowed
            except TimeoutError:
                observed[(source, target)] = not allowed
        wrong = {pair: seen for pair, seen in observed.items() if seen != expected[pair]}
        assert not wrong, f"the cluster decided otherwise: {wrong}"


def test_a_pod_no_policy_selects_is_not_affected(
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    namespace: str,
    tools_image: str,
    kube: type[Helpers],
) -> None:
    """Enforcement on the node leaves the pods of the other tests alone: with no policy in
    their namespace, pods reach each other and the node's services."""
    for name in ("a", "b"):
        core_v1.create_namespaced_pod(
            namespace, listener(name, tools_image, {"app": name}, {"probe": 8000})
        )
    for name in ("a", "b"):
        kube.wait_for_pod_phase(core_v1, namespace, name, {"Running"})
    b = core_v1.read_namespaced_pod("b", namespace).status.pod_ip
    enforcement.wait_enforced([(namespace, "a"), (namespace, "b")])
    assert kube.wait_for(
        lambda: enforcement.reaches(kubeconfig, namespace, "a", f"http://{b}:8000/"),
        timeout=30,
        what="a -> b",
    )
    assert enforcement.reaches(kubeconfig, namespace, "a", API_URL)
