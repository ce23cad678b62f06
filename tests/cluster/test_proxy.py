"""An egress proxy (the chart's ``proxy`` values, issue 23) in the real test cluster.

The git server is on the node, and the chart's NetworkPolicies (enforced by kube-router)
let build pods reach only the proxy's port there (and the registry's): the build is
requested by branch, so the service resolves it with ``git ls-remote`` and the build pod
clones, both over HTTP through the proxy (tinyproxy, Debian's package), whose log names
each, with the client's address. The log is the evidence, not the build's success:
without the proxy values this build cloned directly and was built (seen once; most likely
kube-router let the new pod's first connections through before its rules for the pod were
in place, not yet looked into), while the proxy's log stayed empty and the test failed.

The registry is in ``noProxy`` and reached directly: the BuildKit daemon's pushes through
tinyproxy failed now and then (Go reuses a keep-alive connection tinyproxy has just
closed, and a POST is not retried), and squid 5.7 broke off large blob PUTs; the daemon's
proxy settings are checked in the chart's render (tests/chart).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from tests.integration.forge_standins import HttpGitServer, start_http_git_server

from .conftest import NODE_IP, REPO_DIR, Helpers
from .enforcement import node_egress, port_of
from .test_buildkit import base_registry  # noqa: F401 - a fixture
from .test_chart import (  # noqa: F401 - fixtures
    CHART,
    GITHUB_SECRET,
    RELEASE,
    ServiceProxy,
    free_port,
    proxy,
    run_helm,
    service_image,
    wait_for_build,
)
from .test_private_ca import make_repo, request_build

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def egress_proxy(kube: type[Helpers]) -> Iterator[tuple[str, Path]]:
    """tinyproxy at the node's address (Debian's package, installed when missing); yields
    its URL and its log."""
    subprocess.run(
        ["bash", "-c", f'. {REPO_DIR}/scripts/lib.sh && mkdir -p "$STATE_DIR" '
                       "&& need_packages tinyproxy"],
        check=True, timeout=600,
    )  # fmt: skip
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "tinyproxy.log")
        config = Path(tmp, "tinyproxy.conf")
        config.write_text(
            f"Port {port}\nListen {NODE_IP}\nTimeout 600\nMaxClients 100\n"
            f'Allow 10.0.0.0/8\nAllow 127.0.0.1\nLogLevel Connect\nLogFile "{log}"\n'
        )
        proc = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:

            def answers() -> bool:
                try:
                    httpx.get(f"http://{NODE_IP}:{port}/", timeout=5)
                    return True
                except httpx.HTTPError:
                    return proc.poll() is not None

            kube.wait_for(answers, timeout=30, what="tinyproxy")
            assert proc.poll() is None, log.read_text() if log.exists() else ""
            yield f"http://{NODE_IP}:{port}", log
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def http_git() -> Iterator[HttpGitServer]:
    """git over plain HTTP at the node's address."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_http_git_server(Path(tmp), lambda _: True, host=NODE_IP)
        try:
            yield server
        finally:
            server.stop()


def test_builds_go_out_through_the_proxy_only(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
    egress_proxy: tuple[str, Path],
    http_git: HttpGitServer,
    base_registry: str,  # noqa: F811 - test_buildkit's fixture
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    upstream_buildkit: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    proxy_url, proxy_log = egress_proxy
    token = uuid.uuid4().hex[:8]
    repo_name = f"proxied-{token}.git"
    make_repo(
        http_git,
        repo_name,
        {"Dockerfile": f"FROM {base_registry}/debian:bookworm\nARG NB_USER\nARG NB_UID\n"
                       f"RUN echo {token} > /token.txt\n"},
    )  # fmt: skip
    repo_url = http_git.url(repo_name)
    api_token = secrets.token_hex(16)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    bk_repository, _, bk_tag = upstream_buildkit.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{base_registry}/bhs-proxied-{token}-",
        "registry": {"url": f"http://{base_registry}"},
        "apiTokens": [{"name": "test", "token": api_token, "scopes": ["builds:write"]}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        # the registry is reached directly (see the module's docstring)
        "proxy": {"httpProxy": proxy_url, "httpsProxy": proxy_url, "noProxy": base_registry},
        "builder": {
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "buildkit": {
                "image": {"repository": bk_repository, "tag": bk_tag, "pullPolicy": "Never"},
                "insecureRegistries": [base_registry],
            },
        },
        # the node's address only on the proxy's and the registry's ports: not the git server's
        "networkPolicy": node_egress(NODE_IP, port_of(proxy_url), port_of(base_registry)),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    run_helm(helm, kubeconfig, namespace, "install", RELEASE, str(CHART), "-f", str(values_file),
             "--wait", "--timeout", "5m")  # fmt: skip
    status, build = request_build(kubeconfig, namespace, core_v1, api_token, repo_url, "main")
    assert status == 202, build
    done = wait_for_build(proxy, kube, build["id"])
    log = proxy.http.get(f"/api/v1/builds/{build['id']}/logs").text
    assert done["state"] == "built", (done.get("error"), log, proxy_log.read_text()[-6000:])
    assert token in log  # the RUN step ran after a clone through the proxy
    # the clone of each (the service's ls-remote, the build pod's clone), through the proxy
    ips = {
        "service": pod_ip(core_v1, namespace, "app.kubernetes.io/component=service"),
        "build": pod_ip(core_v1, namespace, f"binderhub-service/build-id={build['id']}"),
    }
    git_url = http_git.url(repo_name.removesuffix(".git"))
    expected = {
        "service": [f"GET {git_url}/info/refs"],
        "build": [f"GET {git_url}/info/refs", f"POST {git_url}/git-upload-pack"],
    }

    def missing() -> list[tuple[str, str]]:
        seen = proxied_requests(proxy_log.read_text())
        return [
            (who, request)
            for who, requests in expected.items()
            for request in requests
            if not any(ip == ips[who] and r.startswith(request) for ip, r in seen)
        ]

    try:
        kube.wait_for(lambda: not missing(), timeout=30, what="the proxy's log")
    except TimeoutError:
        pytest.fail(f"not through the proxy: {missing()}\n{proxy_log.read_text()}")


def pod_ip(core_v1: client.CoreV1Api, namespace: str, selector: str) -> str:
    (pod,) = core_v1.list_namespaced_pod(namespace, label_selector=selector).items
    return str(pod.status.pod_ip)


def proxied_requests(log: str) -> list[tuple[str, str]]:
    """(client address, request line) of each request in tinyproxy's log, which names the
    client on a ``Connect`` line and the request on a later line of the same descriptor."""
    clients: dict[str, str] = {}
    requests = []
    for line in log.splitlines():
        _, _, rest = line.partition("]: ")
        if rest.startswith("Connect (file descriptor "):
            fd, _, ip = rest.removeprefix("Connect (file descriptor ").partition("): ")
            clients[fd] = ip.strip()
        elif rest.startswith("Request (file descriptor "):
            fd, _, request = rest.removeprefix("Request (file descriptor ").partition("): ")
            requests.append((clients.get(fd, ""), request.strip()))
    return requests
