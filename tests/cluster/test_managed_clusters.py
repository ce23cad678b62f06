"""What managed clusters need of the chart (issue 23), in the real test cluster.

- The builder image in a registry that asks for credentials (as GHCR, Quay, Harbor or a
  private Docker Hub repository do): the build pods' ServiceAccount carries
  ``builder.imagePullSecrets``, with which the node pulls it (``pullPolicy: Always``).
- The BuildKit certificates in Secrets of the operator's (``builder.buildkit.tls.
  existingSecrets``): two renders against the cluster are byte-identical (GitOps tools
  render without lookups and compare), and builds run over mTLS with them.
- A pull secret or certificate Secret that does not exist: ``helm install`` fails naming
  the value, and nothing is installed.

The registry is the walkthrough's Docker-Hub-like one (token auth) on the node's address;
the chart's NetworkPolicies are on and enforced, so build pods and the daemon are let reach
it and the git server there (enforcement.node_egress).
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

from . import walkthrough as w
from .conftest import NODE_IP, GitServer, Helpers
from .enforcement import node_egress, port_of
from .releases import Release
from .test_chart import (  # noqa: F401 - fixtures
    CHART,
    GITHUB_SECRET,
    RELEASE,
    SERVICE,
    ServiceProxy,
    leftovers,
    proxy,
    send_push,
    service_image,
    wait_for_build,
)

pytestmark = pytest.mark.cluster

CREDENTIALS = ("puller", uuid.uuid4().hex[:12])
DAEMON = f"{SERVICE}-buildkit"


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory, node_ip: str) -> Iterator[str]:
    """A registry that answers nothing without credentials, on the node's address."""
    with w.pod_registry(tmp_path_factory.mktemp("registry"), node_ip, CREDENTIALS) as host:
        yield host


def push(local: str, registry: str, name: str, config: Path) -> str:
    """``local`` pushed to the private registry as ``name``; its name as pods see it."""
    w.docker_push(local, f"127.0.0.1:{port_of(registry)}/{name}", CREDENTIALS, config)
    return f"{registry}/{name}"


def certificates(namespace: str) -> dict[str, dict[str, bytes | str]]:
    """A CA, the daemon's certificate for its Service's names and a client certificate, as
    the two Secrets' data (``ca.pem``, ``cert.pem``, ``key.pem``, base64)."""
    now = datetime.datetime.now(datetime.UTC)

    def make(
        name: str, issuer: tuple[x509.Name, Any] | None, usage: list[Any], hosts: list[str]
    ) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer_name, issuer_key = issuer or (subject, key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        )
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), False)
        if hosts:
            names = [x509.DNSName(h) for h in hosts]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        return builder.sign(issuer_key, hashes.SHA256()), key

    ca, ca_key = make("operator's ca", None, [], [])
    hosts = [DAEMON, f"{DAEMON}.{namespace}", f"{DAEMON}.{namespace}.svc"]
    server, server_key = make(
        DAEMON, (ca.subject, ca_key), [ExtendedKeyUsageOID.SERVER_AUTH], hosts
    )
    client_cert, client_key = make(
        "builds", (ca.subject, ca_key), [ExtendedKeyUsageOID.CLIENT_AUTH], []
    )

    def pem(cert: x509.Certificate, key: Any) -> dict[str, bytes | str]:
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {
            "ca.pem": base64.b64encode(ca.public_bytes(serialization.Encoding.PEM)).decode(),
            "cert.pem": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            "key.pem": base64.b64encode(key_pem).decode(),
        }

    return {"server": pem(server, server_key), "client": pem(client_cert, client_key)}


def run(helm: str, kubeconfig: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "--kubeconfig", kubeconfig, "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_builder_image_behind_credentials_and_the_operators_certificates(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
    private_registry: str,
    git_server: GitServer,
    base_image: str,
    service_image: str,  # noqa: F811 - test_chart's fixture
    release: Release,
    upstream_buildkit: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:8]
    config = tmp_path / "docker-config"
    config.mkdir()
    # the builder image only there (its tag is the test's: the node has no copy of it)
    builder = push(release.builder_image, private_registry, f"builder:{token}", config)
    base = push(base_image, private_registry, "debian:bookworm", config)
    repo_name = f"managed-{token}.git"
    sha = git_server.create_repo(
        repo_name, {"Dockerfile": f"FROM {base}\nARG NB_USER\nARG NB_UID\nLABEL t={token}\n"}
    )
    repo_url = git_server.url(repo_name)
    auth = base64.b64encode(":".join(CREDENTIALS).encode()).decode()
    pull_config = {"auths": {private_registry: {"auth": auth}}}
    core_v1.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="registry-pull"),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": base64.b64encode(json.dumps(pull_config).encode()).decode()},
        ),
    )
    for part, data in certificates(namespace).items():
        core_v1.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=f"ops-{part}"), data=data)
        )
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder.rpartition(":")
    bk_repository, _, bk_tag = upstream_buildkit.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{private_registry}/bhs-managed-{token}-",
        "registry": {"url": f"http://{private_registry}", "username": CREDENTIALS[0]},
        "repos": [{"url": repo_url}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET, "registryPassword": CREDENTIALS[1]},
        "builder": {
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Always"},
            "imagePullSecrets": [{"name": "registry-pull"}],
            "buildkit": {
                "image": {"repository": bk_repository, "tag": bk_tag, "pullPolicy": "Never"},
                "insecureRegistries": [private_registry],
                "tls": {"existingSecrets": {"server": "ops-server", "client": "ops-client"}},
            },
        },
        "networkPolicy": node_egress(
            NODE_IP,
            git_server.port,
            port_of(private_registry),
            w.token_service_port(private_registry),
        ),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    chart = [RELEASE, str(CHART), "-f", str(values_file)]

    # -- two renders with the cluster's lookups: the same bytes ------------------------------
    renders = [
        run(helm, kubeconfig, namespace, "template", *chart, "--dry-run=server") for _ in (1, 2)
    ]
    assert renders[0].returncode == 0, renders[0].stderr
    assert renders[0].stdout == renders[1].stdout
    docs = [d for d in yaml.safe_load_all(renders[0].stdout) if d]
    assert not [d for d in docs if d["kind"] == "Secret" and "buildkit" in d["metadata"]["name"]]

    # -- installed: the build pod pulls the builder image with the account's pull secret ----
    installed = run(helm, kubeconfig, namespace, "install", *chart, "--wait", "--timeout", "5m")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    build = send_push(proxy, repo_url, sha)
    done = wait_for_build(proxy, kube, build["id"])
    assert done["state"] == "built", done.get("error")
    (pod,) = core_v1.list_namespaced_pod(
        namespace, label_selector=f"binderhub-service/build-id={build['id']}"
    ).items
    assert pod.spec.containers[0].image == builder
    assert [s.name for s in pod.spec.image_pull_secrets] == ["registry-pull"]
    assert pod.spec.service_account_name == f"{SERVICE}-build"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"builder": {"imagePullSecrets": [{"name": "absent"}]}}, "builder.imagePullSecrets"),
        ({"imagePullSecrets": [{"name": "absent"}]}, "imagePullSecrets"),
        (
            {"builder": {"buildkit": {"tls": {"existingSecrets": {"server": "a", "client": "b"}}}}},
            "builder.buildkit.tls.existingSecrets.server",
        ),
        ({"caBundle": {"existingConfigMap": "absent"}}, "caBundle.existingConfigMap"),
        (
            {"secrets": {"existingSecret": "absent", "existingSecretKeys": ["docker-config.json"]}},
            "secrets.existingSecret",
        ),
        ({"database": {"existingSecret": "absent"}}, "database.existingSecret"),
    ],
    ids=["build-pull-secret", "pull-secret", "tls-secrets", "ca-config-map", "secrets", "database"],
)
def test_a_missing_secret_is_refused_naming_it_and_nothing_is_installed(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    release: Release,
    values: dict[str, Any],
    named: str,
    tmp_path: Path,
) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    released = CHART.parent / "tests" / "chart" / "released-values.yaml"
    result = run(helm, kubeconfig, namespace, "install", RELEASE, str(CHART),
                 "-f", str(released), "-f", str(values_file))  # fmt: skip
    assert result.returncode != 0
    assert named in result.stderr, result.stderr
    assert "does not exist" in result.stderr
    assert leftovers(api_client, namespace) == []
    listed = run(helm, kubeconfig, namespace, "list", "-q", "--all")
    assert listed.stdout.strip() == ""
