"""What the walkthrough's end-to-end test (test_walkthrough.py) is made of: its registry,
the hub (hub_install.py: manifests and a hub configuration of ours, set up from
zero-to-jupyterhub values) and the released chart installed with the values
docs/walkthrough.md shows, and a client of the hub through its proxy's Service.

The test-environment values (``jhub_test_values``, ``binder_test_values``) only say what a
real cluster has and this one lacks: a home volume on the node instead of a storage class, a
hub database in memory, the test registry's address and credentials instead of
placeholders, and the tokens the test generates. No image value: the service's chart is a
release (releases.py), and the hub's image is the test hub's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

from .enforcement import node_egress, port_of
from .hub_install import HUB_DIR, hub_objects, install, merged
from .releases import Release, plain_http_for_node

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / "tests" / "cluster"
DOCS = ROOT / "docs"
JHUB_VALUES = DOCS / "walkthrough" / "jhub-values.yaml"
BINDER_VALUES = DOCS / "walkthrough" / "binder-values.yaml"
HUB_SNIPPET = DOCS / "hub-extra-config.py"
HUB_NS, BINDER_NS = "jhub", "binder"  # the walkthrough's namespaces (its values name them)
HUB_RELEASE = "jhub"
DOCKER = "/usr/bin/docker"
E2E_SERVICE = "e2e"  # the hub service whose token the test uses as an admin
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def hub_image(base_image: str) -> str:
    """The test hub's image (hub/Dockerfile: JupyterHub, KubeSpawner, Jupyter Server,
    configurable-http-proxy), built with a plain ``docker build`` when what goes into it
    changed (its tag is a hash of its folder and the base image), and loaded into the node."""
    digest = hashlib.sha256()
    for path in sorted(p for p in HUB_DIR.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(HUB_DIR)}\0".encode() + path.read_bytes())
    base_id = subprocess.run(
        [DOCKER, "image", "inspect", "-f", "{{.Id}}", base_image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    digest.update(base_id.encode())
    image = f"local/bhs-test-hub:{digest.hexdigest()[:12]}"
    if subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode:
        secret = ["--secret", f"id=ca-certificates,src={CA_BUNDLE}"] if CA_BUNDLE.exists() else []
        built = subprocess.run(
            [DOCKER, "build", "--build-arg", f"BASE_IMAGE={base_image}", *secret, "-t", image, "."],
            cwd=HUB_DIR,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            capture_output=True,
            text=True,
            timeout=3600,
        )
        assert built.returncode == 0, built.stdout + built.stderr
    subprocess.run([str(CLUSTER_DIR / "load-image.sh"), image], check=True, timeout=900)
    return image


def docker_push(image: str, target: str, credentials: tuple[str, str], config: Path) -> None:
    """Push the Docker daemon's ``image`` as ``target`` (``127.0.0.1:port/name:tag``),
    logged in with ``credentials`` in a docker config folder of its own."""
    env = {"DOCKER_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    registry = target.split("/", 1)[0]
    for args in (
        ["login", "-u", credentials[0], "--password-stdin", registry],
        ["tag", image, target],
        ["push", target],
    ):
        subprocess.run(
            [DOCKER, *args],
            input=credentials[1] if args[0] == "login" else None,
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )


def recreate_namespace(core_v1: client.CoreV1Api, name: str) -> None:
    """A fresh, empty namespace NAME (one left by an earlier run is deleted first)."""
    with contextlib.suppress(client.ApiException):
        core_v1.delete_namespace(name)
    deadline = time.monotonic() + 300
    while True:
        try:
            core_v1.read_namespace(name)
        except client.ApiException as exc:
            if exc.status == 404:
                break
            raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"namespace {name} was not deleted within 300 s")
        time.sleep(1)
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def remove_all(core_v1: client.CoreV1Api) -> None:
    """Delete what ``install_hub`` and ``install_service`` made (without waiting)."""
    for ns in (HUB_NS, BINDER_NS):
        with contextlib.suppress(client.ApiException):
            core_v1.delete_namespace(ns)
    with contextlib.suppress(client.ApiException):
        core_v1.delete_persistent_volume(f"{HUB_NS}-homes")


def home_volume(core_v1: client.CoreV1Api, directory: Path, name: str) -> None:
    """A PersistentVolume on the node's ``directory`` and its claim NAME in the hub's
    namespace: what a storage class (NFS, a cloud disk) gives a real cluster."""
    pv = f"{HUB_NS}-{name}"
    with contextlib.suppress(client.ApiException):
        core_v1.delete_persistent_volume(pv)
    deadline = time.monotonic() + 120  # an earlier run's volume: gone once its claim is
    while True:
        try:
            core_v1.read_persistent_volume(pv)
        except client.ApiException as exc:
            if exc.status == 404:
                break
            raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"PersistentVolume {pv} was not deleted within 120 s")
        time.sleep(0.5)
    spec = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"]}
    volume: Any = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv},
        "spec": {
            **spec,
            "storageClassName": "",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(directory), "type": "Directory"},
        },
    }
    core_v1.create_persistent_volume(volume)
    claim: Any = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": spec["accessModes"],
            "resources": {"requests": spec["capacity"]},
            "storageClassName": "",
            "volumeName": pv,
        },
    }
    core_v1.create_namespaced_persistent_volume_claim(HUB_NS, claim)


def jhub_test_values(
    default_image: str,
    registry: str,
    credentials: tuple[str, str],
    tokens: dict[str, str],
    homes_claim: str,
) -> dict[str, Any]:
    """z2jh values of the test environment, given after the walkthrough's own."""
    name, _, tag = default_image.rpartition(":")
    return {
        "hub": {
            "db": {"type": "sqlite-memory"},  # no storage class here
            "services": {
                "binder": {"apiToken": tokens["hub-service"]},
                E2E_SERVICE: {"apiToken": tokens["e2e"]},
            },
            # the test makes users, their tokens (which need every scope a user has) and
            # their servers: JupyterHub's admin role
            "loadRoles": {"admin": {"services": [E2E_SERVICE]}},
        },
        "proxy": {"service": {"type": "ClusterIP"}},  # no load balancer here
        "imagePullSecret": {
            "registry": registry,
            "username": credentials[0],
            "password": credentials[1],
        },
        "singleuser": {
            "image": {"name": name, "tag": tag, "pullPolicy": "IfNotPresent"},
            "startTimeout": 600,
            "storage": {"type": "static", "static": {"pvcName": homes_claim}},
            # a volume on the node belongs to root: hand the user's folder to the user
            "initContainers": [
                {
                    "name": "home-owner",
                    "image": default_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["chown", "1000:100", "/home/jovyan"],
                    "securityContext": {"runAsUser": 0, "runAsGroup": 0},
                    "volumeMounts": [
                        {"name": "home", "mountPath": "/home/jovyan", "subPath": "{username}"}
                    ],
                }
            ],
        },
    }


def helm_install(
    helm: str, kubeconfig: str, release: str, chart: str, namespace: str, *args: str
) -> str:
    """``helm upgrade --install`` and wait; the output (NOTES) or an AssertionError."""
    cmd = [
        helm,
        "--kubeconfig",
        kubeconfig,
        "--namespace",
        namespace,
        "upgrade",
        "--install",
        release,
        chart,
        *args,
        "--wait",
        "--timeout",
        "10m",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def write_values(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


@dataclass
class Hub:
    """HTTP to the hub's public proxy: its Service ``proxy-public``, reached from the node
    at its cluster IP (kube-proxy's rules). Not through the API server's service proxy:
    that one drops the ``Authorization`` header the hub's API needs."""

    http: httpx.Client
    admin_token: str
    homes: Path  # the node's folder behind the users' home volumes

    @classmethod
    def connect(cls, api_client: client.ApiClient, admin_token: str, homes: Path) -> Hub:
        service = client.CoreV1Api(api_client).read_namespaced_service("proxy-public", HUB_NS)
        (port,) = [p.port for p in service.spec.ports if p.name == "http"]
        base = f"http://{service.spec.cluster_ip}:{port}"
        return cls(httpx.Client(base_url=base, timeout=60), admin_token, homes)

    def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        headers.update(kwargs.pop("headers", {}))
        return self.http.request(method, path, headers=headers, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The hub API's JSON answer to METHOD /hub/api/PATH as the test's admin service."""
        response = self.request(method, f"/hub/api/{path}", **kwargs)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def create_user(self, user: str) -> None:
        """Make USER through the hub's API unless it exists. (The test acts for users with
        its admin token: JupyterHub refuses to mint tokens for a user to a service.)"""
        if self.request("GET", f"/hub/api/users/{user}").status_code == 404:
            self.api("POST", f"users/{user}")

    def server_ready(self, user: str) -> bool:
        server = self.api("GET", f"users/{user}").get("servers", {}).get("")
        return bool(server and server.get("ready"))

    def close(self) -> None:
        self.http.close()


def binder_test_values(
    registry: str, repo_url: str, password: str, tokens: dict[str, str]
) -> dict[str, Any]:
    """This chart's values of the test environment, given after the walkthrough's own."""
    node_ip, _, _ = registry.rpartition(":")
    # the registry, its token service and the git server are on the node's (private)
    # address, where the chart's NetworkPolicies keep build pods and build steps off
    # otherwise: an operator's registry there is let in the same way
    ports = (port_of(registry), token_service_port(registry), port_of(repo_url))
    return {
        "imagePrefix": f"{registry}/binder-",
        "registry": {"url": f"http://{registry}"},
        "repos": [{"url": repo_url, "branches": ["main"]}],
        "secrets": {
            "registryPassword": password,
            "githubWebhookSecret": tokens["webhook"],
            "settings": {"jupyterhub": {"api_token": tokens["hub-service"]}},
        },
        # the test registry answers plain HTTP (real ones answer HTTPS)
        "builder": {"buildkit": {"insecureRegistries": [registry]}},
        "networkPolicy": node_egress(node_ip, *ports),
        # the test node carries no z2jh user-node label: pre-pull onto every node (one)
        "prepull": {"nodeSelector": None},
    }


def token_service_port(registry: str) -> int:
    """The port of the registry's token service: the realm its 401 names."""
    answer = httpx.get(f"http://{registry}/v2/", timeout=10)
    challenge = answer.headers["WWW-Authenticate"]
    realm = challenge.split('realm="', 1)[1].split('"', 1)[0]
    return port_of(realm)


def signed_push(secret: str, repo_url: str, sha: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of GitHub's push webhook for ``sha`` on ``main`` of ``repo_url``
    (the recorded delivery of tests/fixtures, rewritten), signed with ``secret``."""
    from webhook.deliveries import github_signature

    from .test_chart import push_delivery

    body = json.dumps(push_delivery(repo_url, sha)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(secret.encode(), body),
    }
    return body, headers


# ------------------------------------------------------------------------------------------
# the whole environment, for the test's fixtures and for bench/walkthrough.py
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def pod_registry(directory: Path, node_ip: str, credentials: tuple[str, str]) -> Iterator[str]:
    """The Docker-Hub-like registry (token auth, 401 for a repository not there yet),
    reached at ``node_ip:port`` by pods and the node's containerd (plain HTTP) and at
    ``127.0.0.1:port`` by the Docker daemon; its token service at the node's address.
    Yields ``node_ip:port``."""
    from tests.integration.token_registry import start_token_registry

    registry, tokens = start_token_registry(
        directory,
        credentials,
        hide_missing=True,
        token_host=node_ip,
        listen="0.0.0.0",  # noqa: S104 - pods reach it at the node's address
    )
    host = f"{node_ip}:{registry.host.rsplit(':', 1)[1]}"
    try:
        with plain_http_for_node(host):
            yield host
    finally:
        registry.stop()
        tokens.stop()


def push_singleuser_base(
    local_image: str, registry: str, credentials: tuple[str, str], config: Path
) -> str:
    """``local_image`` pushed to ``registry`` (``node_ip:port``); its name there."""
    name = "jupyter-singleuser:" + local_image.rpartition(":")[2]
    port = registry.rsplit(":", 1)[1]
    docker_push(local_image, f"127.0.0.1:{port}/{name}", credentials, config)
    return f"{registry}/{name}"


def hub_values(
    default_image: str,
    registry: str,
    credentials: tuple[str, str],
    tokens: dict[str, str],
    homes_claim: str,
) -> dict[str, Any]:
    """The hub's z2jh values: the walkthrough's file, the snippet as ``--set-file`` gives it
    (``hub.extraConfig.binderhub-service``), then the test environment's values."""
    walkthrough = yaml.safe_load(JHUB_VALUES.read_text())
    snippet = {"hub": {"extraConfig": {"binderhub-service": HUB_SNIPPET.read_text()}}}
    test = jhub_test_values(default_image, registry, credentials, tokens, homes_claim)
    return merged(merged(walkthrough, snippet), test)


def install_hub(
    api_client: client.ApiClient,
    image: str,
    default_image: str,
    registry: str,
    credentials: tuple[str, str],
    tokens: dict[str, str],
    tmp: Path,
) -> Hub:
    """Fresh ``jhub`` and ``binder`` namespaces, a home volume, and the test hub
    (hub_install.py) installed with the walkthrough's values, the hub snippet and the test
    environment's values; ``image`` runs the hub and its proxy."""
    core_v1 = client.CoreV1Api(api_client)
    for ns in (HUB_NS, BINDER_NS):
        recreate_namespace(core_v1, ns)
    homes = tmp / "homes"
    homes.mkdir()
    home_volume(core_v1, homes, "homes")
    values = hub_values(default_image, registry, credentials, tokens, "homes")
    objects = hub_objects(
        values, image=image, release=HUB_RELEASE, proxy_token=secrets.token_hex(32)
    )
    install(api_client, HUB_NS, objects, timeout=300)
    return Hub.connect(api_client, tokens["e2e"], homes)


def install_service(
    helm: str,
    kubeconfig: str,
    release: Release,
    overrides: dict[str, Any],
    tmp: Path,
    *more: str,
) -> str:
    """The released chart (``helm upgrade --install oci://...``) in ``binder`` with the
    walkthrough's values and then ``overrides``; the output (NOTES)."""
    return helm_install(
        helm,
        kubeconfig,
        "binderhub-service",
        release.chart,
        BINDER_NS,
        "--version",
        release.version,
        "--plain-http",
        "--values",
        str(BINDER_VALUES),
        "--values",
        str(write_values(tmp / f"binder-test-values-{release.version}.yaml", overrides)),
        *more,
    )


def course_dockerfile(base: str) -> str:
    """The test repository's Dockerfile: FROM the single-user base, the repository put
    where repo2docker's REPO_DIR says (docs/home-folder.md, remedy 1)."""
    return (
        f"FROM {base}\n"
        "ARG REPO_DIR=/home/jovyan\n"
        "ENV REPO_DIR=${REPO_DIR}\n"
        "COPY --chown=1000:1000 . ${REPO_DIR}/\n"
        "WORKDIR ${REPO_DIR}\n"
    )


def start_server(hub: Hub, user: str, options: dict[str, Any], timeout: float = 600) -> None:
    """Start USER's server with ``options`` (KubeSpawner's user options) and wait until
    the hub says it is ready."""
    hub.create_user(user)
    response = hub.request("POST", f"/hub/api/users/{user}/server", json=options)
    assert response.status_code in (201, 202), response.text
    deadline = time.monotonic() + timeout
    while not hub.server_ready(user):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user}'s server was not ready within {timeout} s")
        time.sleep(0.2)


def stop_server(hub: Hub, user: str, timeout: float = 120) -> None:
    """Stop USER's server and wait until the hub has none."""
    hub.request("DELETE", f"/hub/api/users/{user}/server")
    deadline = time.monotonic() + timeout
    while hub.api("GET", f"users/{user}").get("servers"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user}'s server did not stop within {timeout} s")
        time.sleep(0.2)


def pod_events(core_v1: client.CoreV1Api, pod: str) -> list[client.CoreV1Event]:
    """The events of the hub's namespace about the pod named ``pod``."""
    field = f"involvedObject.name={pod}"
    return list(core_v1.list_namespaced_event(HUB_NS, field_selector=field).items)


def prepulled(hub: Hub, image: str) -> dict[str, Any] | None:
    """The service's ``GET /api/v1/prepull`` (through the hub's proxy) when it says every
    selected node has ``image``, else None."""
    response = hub.request("GET", "/services/binder/api/v1/prepull")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    counted = {i["image"]: i for i in answer["images"]}
    done = image in counted and counted[image]["present"] == answer["nodes"] >= 1
    return answer if done else None


def profile_options(hub: Hub, service_token: str, image: str) -> dict[str, str]:
    """The user options that pick ``image`` from the service's profile list."""
    profiles = hub.request("GET", "/services/binder/api/v1/profiles", token=service_token).json()
    (profile,) = profiles
    (slug,) = [
        s
        for s, c in profile["profile_options"]["image"]["choices"].items()
        if c["kubespawner_override"]["image"] == image
    ]
    return {"profile": profile["slug"], f"profile-option-{profile['slug']}--image": slug}
