"""What the walkthrough's end-to-end test (test_walkthrough.py) is made of: its registry,
the z2jh and service installs with the values docs/walkthrough.md shows, and a client of
the hub through the API server's service proxy (as anyone with a kubeconfig reaches it).

The test-environment values (``jhub_test_values``, ``binder_test_values``) only say what a
real cluster has and this one lacks: images built here instead of published ones, a home
volume on the node instead of a storage class, the test registry's address and credentials
instead of placeholders, and the tokens the test generates.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / "tests" / "cluster"
Z2JH_CHART = CLUSTER_DIR / "vendor" / "zero-to-jupyterhub-4.4.0" / "jupyterhub"
SERVICE_CHART = ROOT / "chart"
DOCS = ROOT / "docs"
JHUB_VALUES = DOCS / "walkthrough" / "jhub-values.yaml"
BINDER_VALUES = DOCS / "walkthrough" / "binder-values.yaml"
HUB_SNIPPET = DOCS / "hub-extra-config.py"
HUB_NS, BINDER_NS = "jhub", "binder"  # the walkthrough's namespaces (its values name them)
CONTAINERD_HOSTS = Path("/tmp/binderhub-service-cluster/containerd/certs.d")
DOCKER = "/usr/bin/docker"
E2E_SERVICE = "e2e"  # the hub service whose token the test uses as an admin


def z2jh_images() -> dict[str, str]:
    """hub/proxy/singleuser -> image, built here and loaded into the node (ensure-images.sh)."""
    out = subprocess.run(
        [str(CLUSTER_DIR / "z2jh" / "ensure-images.sh"), "--load"],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@contextlib.contextmanager
def plain_http_for_node(host: str) -> Iterator[None]:
    """Let the node's containerd pull from ``host`` (``ip:port``) over plain HTTP while
    the block runs (its hosts directory is read at each pull)."""
    folder = CONTAINERD_HOSTS / host
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.toml").write_text(
        f'server = "http://{host}"\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    try:
        yield
    finally:
        (folder / "hosts.toml").unlink()
        folder.rmdir()


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


def home_volume(core_v1: client.CoreV1Api, directory: Path, name: str) -> None:
    """A PersistentVolume on the node's ``directory`` and its claim NAME in the hub's
    namespace: what a storage class (NFS, a cloud disk) gives a real cluster."""
    pv = f"{HUB_NS}-{name}"
    with contextlib.suppress(client.ApiException):
        core_v1.delete_persistent_volume(pv)
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


def image_values(image: str, pull_policy: str = "IfNotPresent") -> dict[str, str]:
    name, _, tag = image.rpartition(":")
    return {"name": name, "tag": tag, "pullPolicy": pull_policy}


def jhub_test_values(
    images: dict[str, str],
    default_image: str,
    registry: str,
    credentials: tuple[str, str],
    tokens: dict[str, str],
    homes_claim: str,
) -> dict[str, Any]:
    """z2jh values of the test environment, given after the walkthrough's own."""
    su = images["singleuser"]
    return {
        "hub": {
            "image": image_values(images["hub"]),
            "db": {"type": "sqlite-memory"},  # no storage class here
            "services": {
                "binder": {"apiToken": tokens["hub-service"]},
                E2E_SERVICE: {"apiToken": tokens["e2e"]},
            },
            "loadRoles": {
                "e2e": {
                    "services": [E2E_SERVICE],
                    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
                }
            },
        },
        "proxy": {
            "chp": {"image": image_values(images["proxy"])},
            "service": {"type": "ClusterIP"},  # no load balancer here
        },
        "imagePullSecret": {
            "registry": registry,
            "username": credentials[0],
            "password": credentials[1],
        },
        "singleuser": {
            "image": image_values(default_image),
            "startTimeout": 600,
            # no metadata server to hide, and no network-tools image
            "cloudMetadata": {"blockWithIptables": False},
            "storage": {"type": "static", "static": {"pvcName": homes_claim}},
            # a volume on the node belongs to root: hand the user's folder to the user
            "initContainers": [
                {
                    "name": "home-owner",
                    "image": su,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["chown", "1000:100", "/home/jovyan"],
                    "securityContext": {"runAsUser": 0, "runAsGroup": 0},
                    "volumeMounts": [
                        {"name": "home", "mountPath": "/home/jovyan", "subPath": "{username}"}
                    ],
                }
            ],
        },
        # each needs images of its own that the test does not build
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "scheduling": {
            "userScheduler": {"enabled": False},
            "userPlaceholder": {"enabled": False},
        },
    }


def helm_install(
    helm: str, kubeconfig: str, release: str, chart: Path, namespace: str, *args: str
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
        str(chart),
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
    """HTTP to the hub's public proxy (Service proxy-public) through the API server."""

    http: httpx.Client
    admin_token: str
    homes: Path  # the node's folder behind the users' home volumes

    @classmethod
    def connect(cls, api_client: client.ApiClient, admin_token: str, homes: Path) -> Hub:
        conf = api_client.configuration
        context = ssl.create_default_context(cafile=conf.ssl_ca_cert)
        context.load_cert_chain(conf.cert_file, conf.key_file)
        base = f"{conf.host}/api/v1/namespaces/{HUB_NS}/services/proxy-public:http/proxy"
        return cls(httpx.Client(base_url=base, verify=context, timeout=60), admin_token, homes)

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

    def user_token(self, user: str) -> str:
        """A new API token of USER (created if missing)."""
        if self.request("GET", f"/hub/api/users/{user}").status_code == 404:
            self.api("POST", f"users/{user}")
        answer = self.api("POST", f"users/{user}/tokens", json={"note": "e2e"})
        return str(answer["token"])

    def server_ready(self, user: str) -> bool:
        server = self.api("GET", f"users/{user}").get("servers", {}).get("")
        return bool(server and server.get("ready"))

    def close(self) -> None:
        self.http.close()
