"""Every builder of the chart (issue 24), installed into a namespace enforcing the level each
needs, then a signed push built and pushed to a registry that asks for credentials, a commit
that changes only content rebuilt from the cache, and a RUN step of an untrusted repository
reaching what docs/kubernetes.md ("What a build step can reach") says, with the chart's
NetworkPolicies on (the default) and enforced by the test cluster (kube-router): where the
step runs under them (the release's daemon, a rootless daemon in the build pod, dind's
daemon, an operator's daemon under the operator's policy) it reaches the internet and the
registry but not the Kubernetes API, the service, the hub or the metadata address; in the
node's Docker network (``docker-socket``) it reaches all of them:

- ``buildkit-external`` under "restricted": builds go over mTLS to a BuildKit daemon an
  operator runs in another namespace (privileged, which that namespace allows);
- ``buildkit-rootless`` under "baseline": each build pod runs its own rootless daemon
  (the ``moby/buildkit`` rootless stand-in);
- ``buildkit`` (the default), ``dind`` and ``docker-socket`` under "privileged": the
  release's privileged BuildKit daemon, the release's docker-in-docker DaemonSet, and the
  node's Docker daemon.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testkit import z2jh
from testkit.components import Registry, start_registry

from . import builders, enforcement
from .conftest import NODE_IP
from .test_chart import (  # noqa: F401 - fixtures
    CHART,
    RELEASE,
    SERVICE,
    ServiceProxy,
    commit,
    dind_image,
    free_port,
    proxy,
    run_helm,
    send_push,
    service_image,
    wait_for_build,
)
from .test_network_policy import API_URL, listener

pytestmark = pytest.mark.cluster

CREDENTIALS = ("external-builder", f"push-{uuid.uuid4().hex}")
WEBHOOK_SECRET = "chart test github secret"  # test_chart's send_push signs with it
PSA = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Registry]:
    """A registry on every address of the node that asks for credentials, holding the
    Debian base as ``debian:bookworm``."""
    registry = start_registry(
        tmp_path_factory.mktemp("external-registry"),
        auth=CREDENTIALS,
        listen="0.0.0.0",  # noqa: S104 - pods
    )
    try:
        builders.push_base(base_image, registry.host, CREDENTIALS)
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def daemon_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A namespace of the operator's that allows privileged pods, for the daemon."""
    name = f"bhs-daemon-{uuid.uuid4().hex[:8]}"
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={PSA: "privileged"}))
    )
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            core_v1.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def hub(namespace: str, core_v1: client.CoreV1Api, kube: Any, tools_image: str) -> Iterator[str]:
    """A stand-in for a JupyterHub's hub in a namespace of its own (as z2jh installs it): a
    pod with z2jh's hub labels answering HTTP on the hub's port, no policy of its own;
    ``ip:port``."""
    name = f"{namespace}-hub"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        labels = {**z2jh.match_labels("hub", "jhub"), **z2jh.POD_ACCESS_LABELS["hub"]}
        core_v1.create_namespaced_pod(
            name, listener("hub", tools_image, labels, {"http": z2jh.HUB_PORT})
        )
        kube.wait_for_pod_phase(core_v1, name, "hub", {"Running"})
        yield f"{core_v1.read_namespaced_pod('hub', name).status.pod_ip}:{z2jh.HUB_PORT}"
    finally:
        with contextlib.suppress(ApiException):
            core_v1.delete_namespace(name, propagation_policy="Background")


def test_restricted_namespace_builds_on_an_external_daemon(
    helm: str,
    kubeconfig: str,
    namespace: str,
    daemon_namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    node_ip: str,
    auth_registry: Registry,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    upstream_buildkit: str,
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    hub: str,
    tmp_path: Path,
) -> None:
    registry = f"{node_ip}:{auth_registry.host.rpartition(':')[2]}"
    daemon_host = f"buildkitd.{daemon_namespace}.svc"

    # the operator's daemon, with a certificate for its Service's name
    ca, server, client_pem = builders.make_certificates([daemon_host])
    core_v1.create_namespaced_secret(
        daemon_namespace, builders.tls_secret("buildkitd-tls", ca, server)
    )
    config_map, pod, service = builders.external_daemon_objects(
        daemon_namespace, upstream_buildkit, [registry]
    )
    core_v1.create_namespaced_config_map(daemon_namespace, config_map)
    core_v1.create_namespaced_pod(daemon_namespace, pod)
    core_v1.create_namespaced_service(daemon_namespace, service)
    kube.wait_for_pod_phase(core_v1, daemon_namespace, "buildkitd", {"Running"})
    # the operator confines the daemon's network, where build steps run (docs/kubernetes.md)
    client.NetworkingV1Api(core_v1.api_client).create_namespaced_network_policy(
        daemon_namespace,
        builders.external_daemon_policy(namespace, NODE_IP, enforcement.port_of(registry)),
    )
    # the client certificate, given to the release as an existing Secret
    core_v1.create_namespaced_secret(
        namespace, builders.tls_secret("buildkit-client", ca, client_pem)
    )
    external = {
        "host": f"tcp://{daemon_host}:1234",
        "tlsSecret": "buildkit-client",
        # the chart's NetworkPolicies let build pods reach the operator's daemon there
        "networkPolicyPeers": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": daemon_namespace}
                },
                "podSelector": {"matchLabels": {"app": "buildkitd"}},
            }
        ],
    }
    results = build_in_namespace(
        "restricted",
        {"type": "buildkit-external", "external": external},
        helm=helm, kubeconfig=kubeconfig, namespace=namespace, core_v1=core_v1, kube=kube,
        registry=registry, auth_registry=auth_registry, git_server=git_server,
        service_image=service_image, builder_image=builder_image, proxy=proxy,
        tmp_path=tmp_path, hub=hub,
    )  # fmt: skip
    ready = proxy.http.get("/health/ready").json()
    assert ready["checks"]["buildkit"]["ok"] is True, ready
    # docs/kubernetes.md, "What a build step can reach": a shared daemon's RUN steps
    assert results["secret-registry-password"] == "not-found"
    assert results["secret-webhook-secret"] == "not-found"
    assert results["other-build"] == "not-found"
    assert results["service-account-token"] == "not-found"
    assert results["daemon-process"] == "not-found"  # its own PID namespace
    # the step runs in the operator's daemon's network: the operator's policy confines it
    assert reach(results) == CONFINED, results


def test_baseline_namespace_builds_with_a_rootless_daemon_in_each_build_pod(
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    node_ip: str,
    auth_registry: Registry,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    upstream_buildkit_rootless: str,
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    hub: str,
    tmp_path: Path,
) -> None:
    registry = f"{node_ip}:{auth_registry.host.rpartition(':')[2]}"
    repository, _, tag = upstream_buildkit_rootless.rpartition(":")
    rootless = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "insecureRegistries": [registry],
    }
    results = build_in_namespace(
        "baseline",
        {"type": "buildkit-rootless", "rootless": rootless},
        helm=helm, kubeconfig=kubeconfig, namespace=namespace, core_v1=core_v1, kube=kube,
        registry=registry, auth_registry=auth_registry, git_server=git_server,
        service_image=service_image, builder_image=builder_image, proxy=proxy,
        tmp_path=tmp_path, hub=hub,
    )  # fmt: skip
    # docs/kubernetes.md, "What a build step can reach": the pod's own daemon
    assert results["secret-webhook-secret"] == "not-found"
    assert results["other-build"] == "not-found"
    assert results["service-account-token"] == "not-found"
    # no file holds the push credential where the step can read it; the daemon's memory
    # does while it pushes
    assert results["secret-registry-password"] == "not-found"
    # no process sandbox: the step sees its daemon's processes but may not read their
    # /proc environ, so not their memory either (which asks more of it)
    assert results["daemon-process"] == "found"
    # the step runs in the build pod's network: its NetworkPolicy (on by default, enforced
    # by kube-router) keeps it off the Kubernetes API, the service and the metadata address
    assert reach(results) == CONFINED, results


def test_privileged_daemon_build_step_reaches_what_the_docs_say(
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    node_ip: str,
    auth_registry: Registry,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    upstream_buildkit: str,
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    hub: str,
    tmp_path: Path,
) -> None:
    registry = f"{node_ip}:{auth_registry.host.rpartition(':')[2]}"
    repository, _, tag = upstream_buildkit.rpartition(":")
    buildkit = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "insecureRegistries": [registry],
    }
    results = build_in_namespace(
        "privileged",
        {"type": "buildkit", "buildkit": buildkit},
        helm=helm, kubeconfig=kubeconfig, namespace=namespace, core_v1=core_v1, kube=kube,
        registry=registry, auth_registry=auth_registry, git_server=git_server,
        service_image=service_image, builder_image=builder_image, proxy=proxy,
        tmp_path=tmp_path, hub=hub, daemon_in_release=True,
    )  # fmt: skip
    # docs/kubernetes.md, "What a build step can reach": the release's shared daemon
    assert results["secret-registry-password"] == "not-found"
    assert results["secret-webhook-secret"] == "not-found"
    assert results["other-build"] == "not-found"
    assert results["service-account-token"] == "not-found"
    assert results["daemon-process"] == "not-found"  # its own PID namespace
    # the step runs in the daemon's network, which its NetworkPolicy confines
    assert reach(results) == CONFINED, results


def test_docker_socket_build_step_reaches_what_the_docs_say(
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    auth_registry: Registry,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    hub: str,
    tmp_path: Path,
) -> None:
    # the node's Docker daemon pushes over plain HTTP only to 127.0.0.1; the service pod
    # reaches the registry there on the node's network
    results = build_in_namespace(
        "privileged",
        {"type": "docker-socket"},
        helm=helm, kubeconfig=kubeconfig, namespace=namespace, core_v1=core_v1, kube=kube,
        registry=auth_registry.host, auth_registry=auth_registry, git_server=git_server,
        service_image=service_image, builder_image=builder_image, proxy=proxy,
        tmp_path=tmp_path, hub=hub,
        extra_values={"hostNetwork": True, "containerPort": free_port(),
                      "strategy": {"type": "Recreate"}},
    )  # fmt: skip
    # docs/kubernetes.md, "What a build step can reach": the node's daemon runs the step
    assert results["secret-registry-password"] == "not-found"
    assert results["secret-webhook-secret"] == "not-found"
    assert results["other-build"] == "not-found"
    assert results["service-account-token"] == "not-found"
    assert results["daemon-process"] == "not-found"  # its own PID namespace
    # the step runs in a container of the node's Docker network: no NetworkPolicy covers
    # it, and it reaches what the node reaches
    assert reach(results) == UNCONFINED, results


def test_dind_build_step_reaches_what_the_docs_say(
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    node_ip: str,
    auth_registry: Registry,
    git_server: Any,
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    dind_image: str,  # noqa: F811 - test_chart's fixture
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    hub: str,
    tmp_path: Path,
) -> None:
    registry = f"{node_ip}:{auth_registry.host.rpartition(':')[2]}"
    repository, _, tag = dind_image.rpartition(":")
    dind = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        # with its scheme, dockerd's BuildKit (its builds' FROM) asks the registry over
        # plain HTTP too; without it only dockerd's own pulls and pushes do
        "extraArgs": [f"--insecure-registry=http://{registry}"],
    }
    results = build_in_namespace(
        "privileged",
        {"type": "dind", "dind": dind},
        helm=helm, kubeconfig=kubeconfig, namespace=namespace, core_v1=core_v1, kube=kube,
        registry=registry, auth_registry=auth_registry, git_server=git_server,
        service_image=service_image, builder_image=builder_image, proxy=proxy,
        tmp_path=tmp_path, hub=hub, daemon_in_release=True,
    )  # fmt: skip
    # docs/kubernetes.md, "What a build step can reach": the release's docker-in-docker
    assert results["secret-registry-password"] == "not-found"
    assert results["secret-webhook-secret"] == "not-found"
    assert results["other-build"] == "not-found"
    assert results["service-account-token"] == "not-found"
    assert results["daemon-process"] == "not-found"  # its own PID namespace
    # the step's container is NATed through the daemon's pod, which its NetworkPolicy
    # confines
    assert reach(results) == CONFINED, results


CONFINED = {
    "internet": "reached",  # the step's network works
    "registry": "reached",  # the operator's egress rule for it (enforcement.node_egress)
    "api-server": "unreached",
    "service": "unreached",
    "hub": "unreached",
    "metadata": "unreached",
}
"""What the chart's NetworkPolicies (enforced in the test cluster) leave a build step that
runs under them: the internet (an address on the node stands in for it) and the registry
the operator let the daemon reach; not the Kubernetes API, the service, the hub (a pod
with z2jh's hub labels, in a namespace of its own) or the cloud metadata address (a listener
on the node stands in for it)."""

UNCONFINED = dict.fromkeys(CONFINED, "reached")
"""A build step that no NetworkPolicy covers (the node's Docker daemon) reaches all of it."""


def reach(results: dict[str, str]) -> dict[str, str]:
    """The probe's connection results, by target."""
    return {name: results[name] for name in CONFINED}


def build_in_namespace(
    level: str,
    builder: dict[str, Any],
    *,
    helm: str,
    kubeconfig: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: Any,
    registry: str,
    auth_registry: Registry,
    git_server: Any,
    service_image: str,  # noqa: F811 - a value here, not the fixture
    builder_image: str,
    proxy: ServiceProxy,  # noqa: F811 - a value here, not the fixture
    tmp_path: Path,
    hub: str,
    daemon_in_release: bool = False,
    extra_values: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Install the chart with ``builder`` (and ``extra_values``) into ``namespace``
    enforcing ``level``; a cold build, a content-only rebuild from the cache, another
    build's files, then the probe's build: its results. ``daemon_in_release``: the release
    runs a build daemon in the namespace (``buildkit``, ``dind``). The probe connects to
    the Kubernetes API, the service (its ClusterIP), the hub (``ip:port``), the registry
    (``registry``, the node's address), the metadata address and an internet address."""
    core_v1.patch_namespace(namespace, {"metadata": {"labels": {PSA: level}}})
    token = uuid.uuid4().hex[:8]
    base = f"{registry}/debian:bookworm"
    repo_name = f"external-{token}.git"
    slow_step = f"RUN echo environment-{token} && sleep 20\n"
    sha = git_server.create_repo(
        repo_name,
        {
            "Dockerfile": f"FROM {base}\nARG NB_USER\nARG NB_UID\n{slow_step}"
            "COPY hello.txt /hello.txt\n",
            "hello.txt": f"{token}\n",
        },
    )
    repo_url = git_server.url(repo_name)
    marker = f"marker-{token}"
    probe_name = f"probe-{token}.git"
    marker_name = f"marker-{token}.git"
    marker_sha = git_server.create_repo(marker_name, builders.marker_files(marker, base))

    repository, _, tag = service_image.rpartition(":")
    builder_repository, _, builder_tag = builder_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{registry}/bhs-{level}-{token}-",
        "registry": {"url": f"http://{registry}", "username": CREDENTIALS[0]},
        "repos": [{"url": git_server.url(name)} for name in (repo_name, probe_name, marker_name)],
        "openRead": True,
        "secrets": {
            "githubWebhookSecret": WEBHOOK_SECRET,
            "registryPassword": CREDENTIALS[1],
            "gitlabWebhookToken": "chart-test-canary",
        },
        "builder": {
            "image": {"repository": builder_repository, "tag": builder_tag, "pullPolicy": "Never"},
            **builder,
        },
        # the chart's NetworkPolicies are on: build pods and the release's daemon may reach
        # the git server and the registry on the node, as an operator allows a private one
        "networkPolicy": enforcement.node_egress(
            NODE_IP, enforcement.port_of(git_server.url(repo_name)), enforcement.port_of(registry)
        ),
        **(extra_values or {}),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    run_helm(helm, kubeconfig, namespace, "install", RELEASE, str(CHART), "-f", str(values_file),
             "--wait", "--timeout", "5m")  # fmt: skip
    daemons = [
        p.metadata.name
        for p in core_v1.list_namespaced_pod(namespace).items
        if "buildkit" in str(p.metadata.name) or "dind" in str(p.metadata.name)
    ]
    # the release's own daemon, or none: the operator's, one in each build pod, the node's
    assert bool(daemons) is daemon_in_release, daemons
    # the probe, once the service's address is known
    service_ip = core_v1.read_namespaced_service(SERVICE, namespace).spec.cluster_ip
    targets = {
        "api-server": API_URL.split("://")[1].rstrip("/"),
        "service": f"{service_ip}:80",
        "hub": hub,
        "registry": f"{NODE_IP}:{enforcement.port_of(registry)}",
        "metadata": f"{enforcement.METADATA_IP}:80",
        "internet": f"{enforcement.INTERNET_IP}:80",
    }
    secrets = {"registry-password": CREDENTIALS[1], "webhook-secret": "chart-test-canary"}
    probe_sha = git_server.create_repo(
        probe_name, builders.probe_files(secrets, marker, targets, base)
    )

    # cold build, then a commit that changes only content: the environment step is cached
    cold = wait_for_build(proxy, kube, send_push(proxy, repo_url, sha)["id"])
    assert cold["state"] == "built", cold.get("error")
    cold_log = proxy.http.get(f"/api/v1/builds/{cold['id']}/logs").text
    assert f"environment-{token}" in cold_log
    second = commit(git_server, repo_name, {"hello.txt": f"{token} changed\n"})
    warm = wait_for_build(proxy, kube, send_push(proxy, repo_url, second)["id"])
    assert warm["state"] == "built", warm.get("error")
    warm_log = proxy.http.get(f"/api/v1/builds/{warm['id']}/logs").text
    (tmp_path / "warm-log.json").write_text(warm_log)
    assert f"environment-{token}" not in warm_log.replace(slow_step.strip(), "")
    assert _step_from_cache(warm_log, slow_step.strip()), warm_log
    for image in (cold["image"], warm["image"]):
        assert _in_auth_registry(auth_registry, image)

    # another build's files, then the probe's RUN step
    other = wait_for_build(
        proxy, kube, send_push(proxy, git_server.url(marker_name), marker_sha)["id"]
    )
    assert other["state"] == "built", other.get("error")
    # the metadata address and an internet address answer on the node while the probe runs
    with enforcement.node_stand_ins(f"canary-{token}"):
        probed = wait_for_build(
            proxy, kube, send_push(proxy, git_server.url(probe_name), probe_sha)["id"]
        )
    assert probed["state"] == "built", probed.get("error")
    results = builders.probe_results(proxy.http.get(f"/api/v1/builds/{probed['id']}/logs").text)
    (tmp_path / "probe.json").write_text(json.dumps(results))
    print(f"probe results ({builder['type']}):", results)
    assert results["secret-own"] == "found"  # the search finds what the step can read
    return results


def _step_from_cache(log: str, step: str) -> bool:
    """Whether the build's log (``GET /api/v1/builds/{id}/logs``) says that the Dockerfile
    step ``step`` came from the cache: with BuildKit its vertex is ``CACHED`` (the daemon has
    the layer) or only extracts layers (a new daemon downloads them from the registry
    cache); Docker's builder says "Using cache" after the step. Its own output not being in
    the log shows that it did not run."""
    messages = [str(line["message"]) for line in json.loads(log)["lines"]]
    vertex = next((m.split()[0] for m in messages if m.startswith("#") and step in m), None)
    if vertex is None:  # Docker's builder: "Step 2/3 : RUN …", then " ---> Using cache"
        after = [m for i, m in enumerate(messages) if i and step in messages[i - 1]]
        return any("Using cache" in m for m in after)
    own = [m[len(vertex) :].strip() for m in messages if m.startswith(vertex + " ")]
    rest = [m for m in own if step not in m and not m.startswith("DONE")]
    downloaded = bool(rest) and all(m.startswith(("extracting sha256:", "sha256:")) for m in rest)
    return "CACHED" in rest or downloaded


def _in_auth_registry(registry: Registry, image: str) -> bool:
    import httpx

    name, _, tag = image.partition("/")[2].rpartition(":")
    url = f"http://{registry.host}/v2/{name}/manifests/{tag}"
    accept = ", ".join(
        [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
    )
    answer = httpx.head(url, auth=CREDENTIALS, headers={"Accept": accept}, timeout=10)
    return answer.status_code == 200
