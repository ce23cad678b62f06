"""What tests of NetworkPolicies need on the test cluster's node (issue 23): addresses that
stand in for the cloud metadata service and for the internet, connections tried from inside
pods, and knowing when the enforcer (kube-router, up.sh) has caught up with new pods and
policies.

- ``node_stand_ins()``: an interface ``bhs-probe0`` of the node (an empty bridge: these VMs'
  kernel has no ``dummy`` driver) with ``169.254.169.254`` (the cloud
  metadata address) and ``203.0.113.10`` (an address outside every private range, from
  TEST-NET-3 (RFC 5737), which nothing on the internet uses), each with an HTTP listener
  that answers a canary; only for the ``with`` block's duration. Pods reach both through
  their default route, the node.
- ``reaches(kubeconfig, namespace, pod, url)``: whether ``curl`` in the pod connects (an HTTP
  answer of any status is a connection; refused or timed out is none).
- ``wait_enforced(pods)``: until kube-router has a firewall chain for each pod.
"""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INTERFACE = "bhs-probe0"
METADATA_IP = "169.254.169.254"
INTERNET_IP = "203.0.113.10"
"""TEST-NET-3 (RFC 5737): outside 10/8, 172.16/12, 192.168/16 and 169.254/16, as a registry or
a package index on the internet is. (The VM's own network uses TEST-NET-1.)"""


@dataclass(frozen=True)
class StandIns:
    metadata_url: str
    internet_url: str
    canary: str


class _Canary(http.server.BaseHTTPRequestHandler):
    canary = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.canary)))
        self.end_headers()
        self.wfile.write(self.canary)

    def log_message(self, format: str, *args: object) -> None:
        return


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def node_stand_ins(canary: str) -> Iterator[StandIns]:
    """The metadata address and an internet address on the node, each answering ``canary``
    over HTTP on port 80, for the block's duration (the interface goes afterwards)."""
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("link", "delete", INTERFACE)  # an earlier run's, killed before its cleanup
    _ip("link", "add", INTERFACE, "type", "bridge")
    servers: list[http.server.ThreadingHTTPServer] = []
    try:
        for address in (METADATA_IP, INTERNET_IP):
            _ip("addr", "add", f"{address}/32", "dev", INTERFACE)
        _ip("link", "set", INTERFACE, "up")
        handler = type("Canary", (_Canary,), {"canary": canary.encode()})
        for address in (METADATA_IP, INTERNET_IP):
            server = http.server.ThreadingHTTPServer((address, 80), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        yield StandIns(f"http://{METADATA_IP}/", f"http://{INTERNET_IP}/", canary)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "delete", INTERFACE)


KUBECTL = Path.home() / ".cache/binderhub-service/k8s-v1.34.4/bin/kubectl"
"""The cluster's own kubectl (up.sh builds it): ``kubectl exec`` closes its connection,
where the Python client's exec stream leaves its socket to the garbage collector."""


def reaches(kubeconfig: str, namespace: str, pod: str, url: str) -> bool:
    """Whether ``curl`` in the pod's first container connects to ``url`` (the image needs
    curl): any HTTP answer counts; a refused (curl's exit code 7) or timed-out (28)
    connection does not. Raises for any other failure, which says nothing about policies."""
    script = f"curl -k -s -o /dev/null --connect-timeout 4 -m 8 '{url}'; echo \"exit=$?\""
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, "exec", "-n", namespace, pod, "--",
         "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    if "exit=" not in result.stdout:
        raise AssertionError(f"kubectl exec in {namespace}/{pod} failed: {result.stderr}")
    code = int(result.stdout.rsplit("exit=", 1)[1].split()[0])
    if code in (7, 28):
        return False
    if code == 0:
        return True
    raise AssertionError(f"curl {url} in {namespace}/{pod} failed otherwise (exit {code})")


def _rules() -> str:
    return subprocess.run(
        ["iptables-save", "-t", "filter"], check=True, capture_output=True, text=True, timeout=30
    ).stdout


def wait_enforced(pods: Iterable[tuple[str, str]], timeout: float = 120) -> None:
    """Until kube-router's rules jump to a firewall chain of each (namespace, name) pod (it
    makes one per pod on the node once it has seen the pod's address; the pod's policies
    follow in the same sync). Raises TimeoutError naming those still missing."""
    wanted = {f"POD name:{name} namespace: {ns} " for ns, name in pods}
    deadline = time.monotonic() + timeout
    while True:
        rules = _rules()
        missing = [w for w in wanted if w not in rules]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"kube-router has no firewall chain for {missing}")
        time.sleep(0.5)


def node_egress(node_ip: str, *ports: int) -> dict[str, Any]:
    """``networkPolicy`` values that let build pods and the build daemons reach the test's
    services on the node (git servers, registries, a token service) on ``ports``, as an
    operator adds a registry or git server with a private address: the chart's policies
    keep build pods and build steps off private addresses otherwise. Only those ports: the
    node's others (the Kubernetes API, the kubelet) stay out of reach."""
    rule = {
        "to": [{"ipBlock": {"cidr": f"{node_ip}/32"}}],
        "ports": [{"port": port, "protocol": "TCP"} for port in sorted(set(ports))],
    }
    return {
        "builds": {"egress": [rule]},
        "buildkit": {"egress": [rule]},
        "dind": {"egress": [rule]},
    }


def port_of(address: str) -> int:
    """The port of ``host:port`` or of a URL with one (``git://10.244.0.1:9418/r``)."""
    return int(address.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[1])
