"""Issue 24's builders with issue 23's managed-cluster values, rendered without a cluster:
the NetworkPolicies (on by default) let build pods reach ``buildkit-external``'s daemon and
nothing more; its host is spared the proxy; ``buildkit-rootless``'s daemon in each build pod
gets the proxy and trusts the CA bundle as the release's daemon does. Policies are read by
testkit's evaluator; the test cluster enforces them
(tests/cluster/test_unprivileged_builders.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from jobs.executors.kubernetes import manifests, trust
from testkit.network_policy import Address, Pod, Port, connection_allowed
from tests.unit.test_kube_manifests import make_build

from . import test_chart_static as static
from .test_chart_builders import EXTERNAL
from .test_chart_managed_clusters import (
    BUILD,
    HUB,
    KUBERNETES_API,
    METADATA,
    REGISTRY,
    env_of,
    pem_certificate,
    values_file,
)
from .test_chart_static import K8S_VERSION, NAMESPACE, Render, load_as_service

render = static.render  # a fixture of the static tests (helm is in conftest.py)

PROXY = (
    "--set", "proxy.httpsProxy=http://proxy.example.org:3128",
    "--set", "proxy.httpProxy=http://proxy.example.org:3128",
)  # fmt: skip
DAEMON_NAMESPACE = "buildkit"
EXTERNAL_DAEMON = Pod(DAEMON_NAMESPACE, {"app": "buildkitd"}, ip="10.244.2.9")
"""The operator's daemon of ``EXTERNAL`` (``buildkitd.elsewhere.svc:1234``)."""


def policies_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**d, "metadata": {**d["metadata"], "namespace": NAMESPACE}}
        for d in docs
        if d["kind"] == "NetworkPolicy"
    ]


def external(*more: str, host: str = "tcp://buildkitd.elsewhere.svc:1234") -> tuple[str, ...]:
    args = list(EXTERNAL)
    args[args.index("builder.external.host=tcp://buildkitd.elsewhere.svc:1234")] = (
        f"builder.external.host={host}"
    )
    return (*args, *more)


def test_build_pods_reach_the_external_daemon_its_peers_name_and_nothing_more(
    render: Render, tmp_path: Path
) -> None:
    peers = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": DAEMON_NAMESPACE}},
            "podSelector": {"matchLabels": {"app": "buildkitd"}},
        }
    ]
    docs = render(
        *external(),
        "-f",
        values_file(tmp_path, {"builder": {"external": {"networkPolicyPeers": peers}}}),
    )
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    policies = policies_of(docs)
    assert connection_allowed(policies, source=BUILD, target=EXTERNAL_DAEMON, port=Port(1234))
    assert not connection_allowed(policies, source=BUILD, target=EXTERNAL_DAEMON, port=Port(22))
    other = Pod(DAEMON_NAMESPACE, {"app": "other"}, ip="10.244.2.10")
    assert not connection_allowed(policies, source=BUILD, target=other, port=Port(1234))
    # the rest as with every builder
    assert connection_allowed(policies, source=BUILD, target=REGISTRY, port=Port(443))
    for target, port in ((HUB, Port(8081)), (KUBERNETES_API, Port(6443)), (METADATA, Port(80))):
        assert not connection_allowed(policies, source=BUILD, target=target, port=port)


def test_an_external_daemon_at_an_address_is_its_own_peer(render: Render) -> None:
    policies = policies_of(render(*external(host="tcp://10.30.0.4:1234")))
    daemon = Address("10.30.0.4")
    assert connection_allowed(policies, source=BUILD, target=daemon, port=Port(1234))
    assert not connection_allowed(
        policies, source=BUILD, target=Address("10.30.0.5"), port=Port(1234)
    )
    assert not connection_allowed(policies, source=BUILD, target=daemon, port=Port(443))


def test_an_external_daemon_by_name_without_peers_is_reached_on_its_port_only(
    render: Render,
) -> None:
    policies = policies_of(render(*external()))
    assert connection_allowed(policies, source=BUILD, target=EXTERNAL_DAEMON, port=Port(1234))
    assert not connection_allowed(policies, source=BUILD, target=EXTERNAL_DAEMON, port=Port(1235))
    assert not connection_allowed(policies, source=BUILD, target=KUBERNETES_API, port=Port(6443))
    # without policies, nothing of it
    off = render(*external("--set", "networkPolicy.enabled=false"))
    assert not [d for d in off if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("tcp://buildkitd.elsewhere.svc:1234", "buildkitd.elsewhere.svc"),
        ("tcp://buildkit.corp.example:443", "buildkit.corp.example"),
        ("tcp://10.30.0.4:1234", "10.30.0.4"),
    ],
)
def test_the_external_daemons_host_is_spared_the_proxy(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, name: str
) -> None:
    docs = render(*external(*PROXY, host=host))
    service_env = env_of(static.service_container(docs))
    assert name in service_env["NO_PROXY"].split(",")
    # build pods: the settings' kubernetes.env, which the build pod's containers get
    k8s = load_as_service(docs, tmp_path, monkeypatch).kubernetes
    assert name in k8s.env["NO_PROXY"].split(",")
    assert k8s.env["HTTPS_PROXY"] == "http://proxy.example.org:3128"


def test_the_rootless_daemon_gets_the_proxy_and_trusts_the_ca_bundle(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(
        "--set", "builder.type=buildkit-rootless", *PROXY,
        "-f", values_file(tmp_path, {"caBundle": {"pem": pem_certificate()}}),
    )  # fmt: skip
    settings = load_as_service(docs, tmp_path, monkeypatch)
    job = manifests.make_build_job(make_build(), settings, NAMESPACE)
    spec = job["spec"]["template"]["spec"]
    # the bundle is written first, then the daemon starts, then the builder
    assert [c["name"] for c in spec["initContainers"]] == ["ca-bundle", "buildkitd"]
    daemon = spec["initContainers"][1]
    env = env_of(daemon)
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy.example.org:3128"
    assert "localhost" in env["NO_PROXY"].split(",")
    # Go's roots: the image's own and the bundle's (as the release's daemon has them)
    assert env["SSL_CERT_DIR"] == f"/etc/ssl/certs:{trust.CA_DIR}"
    (mount,) = [m for m in daemon["volumeMounts"] if m["name"] == "ca-bundle"]
    assert (mount["mountPath"], mount["readOnly"]) == (trust.CA_DIR, True)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "ca-bundle"]
    assert volume["configMap"]["name"] == "rel-binderhub-service-ca"
    # the builder keeps its own (the image's bundle and ours, written by ca-bundle)
    builder_env = env_of(spec["containers"][0])
    assert builder_env["SSL_CERT_FILE"] == trust.CA_FILE
    assert builder_env["HTTPS_PROXY"] == "http://proxy.example.org:3128"
    # without either, the daemon has no environment of ours
    plain = load_as_service(
        render("--set", "builder.type=buildkit-rootless"), tmp_path, monkeypatch
    )
    (daemon,) = manifests.make_build_job(make_build(), plain, NAMESPACE)["spec"]["template"][
        "spec"
    ]["initContainers"]
    assert "env" not in daemon
    assert all(m["name"] != "ca-bundle" for m in daemon["volumeMounts"])
