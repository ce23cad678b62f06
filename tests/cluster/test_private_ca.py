"""A registry and a git server signed by an institution's CA, which only the chart's
``caBundle`` holds (issue 23), in the real test cluster.

The service asks the registry over HTTPS whether the image exists and resolves the branch
with ``git ls-remote`` over HTTPS; the build pod clones over HTTPS; the BuildKit daemon
pushes the image and its cache over HTTPS: the release's daemon (``buildkit``), and the
rootless daemon in each build pod (``buildkit-rootless``, issue 24). Nothing else trusts the
CA: not the images, not the node. (The Dockerfile's ``FROM`` comes from a plain-HTTP
registry of the test, the one test_buildkit.py uses: the node's Docker daemon, which pushes
the Debian base there, does not trust the CA either.)

Run without ``caBundle``, the same install fails the build at its first HTTPS connection.
"""

from __future__ import annotations

import json
import secrets
import ssl
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

from testkit.certs import make_ca
from tests.integration.forge_standins import HttpGitServer, start_http_git_server

from .conftest import NODE_IP, Helpers
from .enforcement import KUBECTL, node_egress, port_of
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

pytestmark = pytest.mark.cluster

GIT_IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]


@pytest.fixture(scope="module")
def institution(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA of the test's, and a server certificate for the node's address."""
    directory = tmp_path_factory.mktemp("institution-ca")
    make_ca(directory, "institution CA", addresses=(NODE_IP, "127.0.0.1"))
    return directory


@pytest.fixture(scope="module")
def tls_registry(institution: Path, kube: type[Helpers]) -> Iterator[str]:
    """A registry answering HTTPS at the node's address with the CA's certificate."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "registry.yml")
        config.write_text(
            yaml.safe_dump(
                {
                    "version": 0.1,
                    "storage": {"filesystem": {"rootdirectory": f"{tmp}/data"}},
                    "http": {
                        "addr": f"{NODE_IP}:{port}",
                        "tls": {
                            "certificate": str(institution / "server.pem"),
                            "key": str(institution / "server-key.pem"),
                        },
                    },
                }
            )
        )
        with open(Path(tmp, "registry.log"), "w") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            verify = ssl.create_default_context(cafile=str(institution / "ca.pem"))

            def answers() -> bool:
                try:
                    return httpx.get(f"https://{NODE_IP}:{port}/v2/", verify=verify).is_success
                except httpx.HTTPError:
                    return proc.poll() is not None

            kube.wait_for(answers, timeout=30, what="the HTTPS registry")
            assert proc.poll() is None, Path(tmp, "registry.log").read_text()
            yield f"{NODE_IP}:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tls_git(institution: Path) -> Iterator[HttpGitServer]:
    """git over HTTPS at the node's address, with the CA's certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(institution / "server.pem"), str(institution / "server-key.pem"))
    with tempfile.TemporaryDirectory() as tmp:
        server = start_http_git_server(Path(tmp), lambda _: True, host=NODE_IP, tls=context)
        try:
            yield server
        finally:
            server.stop()


def make_repo(server: HttpGitServer, name: str, files: dict[str, str]) -> str:
    """A bare repository ``name`` served by ``server`` with one commit of ``files``."""
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["git", "init", "-q", "-b", "main", work], check=True)
        for rel, content in files.items():
            Path(work, rel).write_text(content)
        subprocess.run(["git", "-C", work, "add", "-A"], check=True)
        subprocess.run(["git", "-C", work, *GIT_IDENTITY, "commit", "-q", "-m", "c"], check=True)
        subprocess.run(["git", "clone", "-q", "--bare", work, str(server.base / name)], check=True)
        return subprocess.run(
            ["git", "-C", work, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()


REQUEST = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8080/api/v1/builds",
    data=json.dumps({"repo": sys.argv[2], "ref": sys.argv[3]}).encode(),
    headers={"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json"},
)
try:
    with urllib.request.urlopen(request, timeout=120) as answer:
        print(json.dumps([answer.status, json.load(answer)]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, json.load(e)]))
"""


def request_build(
    kubeconfig: str, namespace: str, core_v1: client.CoreV1Api, token: str, repo: str, ref: str
) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/builds with an API token, from inside the service's pod: the API
    server's service proxy passes no ``Authorization`` header on. Returns the status and
    the answer."""
    (pod,) = core_v1.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=service"
    ).items
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, "exec", "-n", namespace, str(pod.metadata.name),
         "--", "python3", "-c", REQUEST, token, repo, ref],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout)
    return int(status), body


@pytest.mark.parametrize("builder", ["buildkit", "buildkit-rootless"])
def test_a_registry_and_a_git_server_of_a_private_ca(
    builder: str,
    request: pytest.FixtureRequest,
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
    institution: Path,
    tls_registry: str,
    tls_git: HttpGitServer,
    base_registry: str,  # noqa: F811 - test_buildkit's fixture
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    upstream_buildkit: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:8]
    repo_name = f"private-ca-{token}.git"
    make_repo(
        tls_git,
        repo_name,
        {"Dockerfile": f"FROM {base_registry}/debian:bookworm\nARG NB_USER\nARG NB_UID\n"
                       f"RUN echo {token} > /token.txt\n"},
    )  # fmt: skip
    repo_url = tls_git.url(repo_name)
    api_token = secrets.token_hex(16)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    # the release's daemon, or (issue 24) a rootless daemon in each build pod, which trusts
    # the bundle as the release's does
    daemon = upstream_buildkit
    if builder == "buildkit-rootless":
        daemon = request.getfixturevalue("upstream_buildkit_rootless")
    bk_repository, _, bk_tag = daemon.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{tls_registry}/bhs-ca-{token}-",
        "registry": {"url": f"https://{tls_registry}"},
        "apiTokens": [{"name": "test", "token": api_token, "scopes": ["builds:write"]}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "caBundle": {"pem": (institution / "ca.pem").read_text()},
        "builder": {
            "type": builder,
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "buildkit" if builder == "buildkit" else "rootless": {
                "image": {"repository": bk_repository, "tag": bk_tag, "pullPolicy": "Never"},
                "insecureRegistries": [base_registry],  # the FROM image's, plain HTTP
            },
        },
        "networkPolicy": node_egress(
            NODE_IP, tls_git.port, port_of(tls_registry), port_of(base_registry)
        ),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    run_helm(helm, kubeconfig, namespace, "install", RELEASE, str(CHART), "-f", str(values_file),
             "--wait", "--timeout", "5m")  # fmt: skip

    # by branch: the service's git ls-remote, then its registry check, both over HTTPS
    status, build = request_build(kubeconfig, namespace, core_v1, api_token, repo_url, "main")
    assert status == 202, build
    done = wait_for_build(proxy, kube, build["id"])
    log = proxy.http.get(f"/api/v1/builds/{build['id']}/logs").text
    assert done["state"] == "built", (done.get("error"), log)
    assert token in log  # the RUN step ran: the clone over HTTPS worked
    verify = ssl.create_default_context(cafile=str(institution / "ca.pem"))
    name, _, tag = done["image"].removeprefix(f"{tls_registry}/").rpartition(":")
    manifest = httpx.head(
        f"https://{tls_registry}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                           "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.list.v2+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"},
        verify=verify,
    )  # fmt: skip
    assert manifest.status_code == 200
    # the answer of the registry check, now a cache hit through the same HTTPS
    status, again = request_build(kubeconfig, namespace, core_v1, api_token, repo_url, "main")
    assert (status, again["outcome"]) == (200, "cached"), again
