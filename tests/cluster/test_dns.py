"""Cluster DNS (CoreDNS behind the kube-dns Service, up.sh): pods resolve Service names as in
a real cluster, fully qualified and by the short names of their resolv.conf search list."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from .conftest import Helpers

pytestmark = pytest.mark.cluster


def _resolve_in_pod(
    core_v1: client.CoreV1Api, kube: type[Helpers], ns: str, image: str, names: list[str]
) -> dict[str, str]:
    """NAME -> the first address ``getent hosts NAME`` prints inside a pod of NS ("" if none)."""
    pod = f"dns-{uuid.uuid4().hex[:6]}"
    script = "; ".join(f'echo "{n} $(getent hosts {n} | cut -d" " -f1 | head -n1)"' for n in names)
    core_v1.create_namespaced_pod(ns, kube.pod_manifest(pod, image, ["sh", "-c", script]))
    kube.wait_for_pod_phase(core_v1, ns, pod, {"Succeeded"})
    log = core_v1.read_namespaced_pod_log(pod, ns)
    found = {}
    for line in log.splitlines():
        name, _, address = line.partition(" ")
        found[name] = address.strip()
    return {n: found.get(n, "") for n in names}


def test_pods_resolve_service_names_through_cluster_dns(
    core_v1: client.CoreV1Api, namespace: str, kube: type[Helpers], tools_image: str
) -> None:
    svc = core_v1.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="answer"),
            spec=client.V1ServiceSpec(
                selector={"app": "none"}, ports=[client.V1ServicePort(port=80)]
            ),
        ),
    )
    ip = svc.spec.cluster_ip
    api_ip = core_v1.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    names = [
        f"answer.{namespace}.svc.cluster.local",
        f"answer.{namespace}.svc",
        f"answer.{namespace}",
        "answer",
        "kubernetes.default",
        "kubernetes.default.svc.cluster.local",
    ]
    got = _resolve_in_pod(core_v1, kube, namespace, tools_image, names)
    want = {n: (api_ip if n.startswith("kubernetes") else ip) for n in names}
    assert got == want


def test_pods_get_the_kube_dns_service_as_their_resolver(
    core_v1: client.CoreV1Api, namespace: str, kube: type[Helpers], tools_image: str
) -> None:
    dns_ip = core_v1.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip
    name = "resolv"
    core_v1.create_namespaced_pod(
        namespace, kube.pod_manifest(name, tools_image, ["cat", "/etc/resolv.conf"])
    )
    kube.wait_for_pod_phase(core_v1, namespace, name, {"Succeeded"})
    lines = core_v1.read_namespaced_pod_log(name, namespace).splitlines()
    assert f"nameserver {dns_ip}" in lines
    search = f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local"
    assert any(line == search or line.startswith(search + " ") for line in lines), lines
