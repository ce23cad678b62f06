"""Where a ``buildkit-rootless`` build pod's start goes (issue 24): from its creation to its
builder container running, split at the daemon's own milestones.

Run from the repository root, on the test cluster (hold ``/tmp/cluster.lock``):
``.venv/bin/python -m bench.rootless_start [--pods 5] [--gate executor|probe|hook|none]
[--debug]``.

Each pod is the build pod's pair, made by the executor's own code
(``jobs.executors.kubernetes.rootless.daemon_container``): the rootless daemon as a native
sidecar and a builder container that only prints the time, in a namespace enforcing Pod
Security ``baseline``. ``--gate`` says what the builder's start waits for: ``executor``, the
executor's manifest as it is (since the cut, nothing: the builder waits for the socket
itself); ``probe``, the startup probe the executor had before (``buildctl debug workers``
every second); ``hook``, a postStart hook that asks the daemon every 0.1 s; ``none``, no
probe and no hook; ``parallel``, the daemon as a second ordinary container instead of a
sidecar, so that the kubelet starts both at once (what that ordering costs; such a pod would
not end with its builder, so the executor does not make it). The daemon's
command is the image's entrypoint behind ``sh -c 'date; exec …'``, so that its start is
seen. Pods are made one at a time; the node's clock is this machine's (a single-node
cluster). Per pod, seconds:

- ``sidecar_start``: the API request to the daemon container's first instruction (schedule,
  the pod's sandbox and network, the container's creation);
- ``daemon_ready``: to buildkitd's ``running server on`` (rootlesskit, the user namespace,
  buildkitd's start);
- ``builder_start``: to the builder container's first instruction (the gate, the kubelet
  starting the next container);
- ``running_seen``: to the pod's phase Running as a watch sees it (the status update);
- ``total``: the request to Running seen (what ``pod_running`` of bench.builders_kube
  counts, less the service's own part).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from kubernetes import client, config, watch

from jobs.executors.kubernetes import rootless
from jobs.settings import load_settings

from .common import ROOT, say
from .kubernetes import sh

IMAGE = "docker.io/moby/buildkit:v0.34.2-rootless"
SERVER_LINE = "running server on"


HOOK_WAIT = (
    f"i=0; until buildctl --addr {rootless.SOCKET} debug workers >/dev/null 2>&1; do"
    " i=$((i+1)); [ $i -lt 1200 ] || exit 1; sleep 0.1; done"
)
"""A postStart hook that waits for the daemon as the startup probe does, every 0.1 s."""
PROBE = {
    "exec": {"command": ["buildctl", "--addr", rootless.SOCKET, "debug", "workers"]},
    "periodSeconds": 1,
    "failureThreshold": 120,
}
"""The daemon's startup probe in the executor's manifest before the cut (commit 3fb2de8)."""


def pod_manifest(name: str, gate: str, debug: bool = False) -> dict[str, Any]:
    """The measured pod: the executor's rootless sidecar and a builder that prints the time."""
    settings = load_settings(
        None,
        kubernetes={
            "builder": "buildkit-rootless",
            "rootless_buildkit": {"image": IMAGE, "image_pull_policy": "IfNotPresent"},
        },
    )
    daemon = rootless.daemon_container(settings)
    daemon["command"] = ["sh", "-c", 'date +"START %s.%N"; exec rootlesskit buildkitd "$@"', "-"]
    if gate != "executor":  # the old startup probe, a postStart hook, or nothing
        daemon.pop("startupProbe", None)
    if gate == "probe":
        daemon["startupProbe"] = PROBE
    if gate == "hook":
        daemon["lifecycle"] = {"postStart": {"exec": {"command": ["sh", "-c", HOOK_WAIT]}}}
    if debug:
        daemon["args"] = [*daemon["args"], "--debug"]
    parallel = gate == "parallel"
    if parallel:
        del daemon["restartPolicy"]
    builder = {
        "name": "builder",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", 'date +"START %s.%N"; sleep 3'],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "initContainers": [] if parallel else [daemon],
            "containers": [builder, daemon] if parallel else [builder],
            "volumes": rootless.daemon_volumes(settings),
        },
    }


def _start_of(log: str) -> float:
    for line in log.splitlines():
        if line.startswith("START "):
            return float(line.split()[1])
    raise RuntimeError(f"no START line in {log[:500]!r}")


def _server_at(log: str) -> float:
    """The node's timestamp (``kubectl logs --timestamps``' RFC 3339) of the server line."""
    for line in log.splitlines():
        if SERVER_LINE in line:
            stamp = line.split(" ", 1)[0]
            seconds, _, fraction = stamp.rstrip("Z").partition(".")
            whole = datetime.fromisoformat(seconds + "+00:00").timestamp()
            return whole + float("0." + (fraction or "0"))
    raise RuntimeError(f"no {SERVER_LINE!r} in the daemon's log")


def measure_pod(
    core: client.CoreV1Api, namespace: str, gate: str, debug: bool = False
) -> dict[str, float]:
    """One pod: created, watched to Running, then its logs read; seconds per segment."""
    name = f"rootless-{uuid.uuid4().hex[:6]}"
    seen: dict[str, float] = {}
    ready = threading.Event()

    def run() -> None:
        w = watch.Watch()  # type: ignore[no-untyped-call]
        ready.set()
        for event in w.stream(  # type: ignore[no-untyped-call]
            core.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            timeout_seconds=120,
        ):
            if event["object"].status.phase == "Running":
                seen["running"] = time.time()
                w.stop()  # type: ignore[no-untyped-call]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait()
    time.sleep(0.3)  # the watch's request is out
    created = time.time()
    body: Any = pod_manifest(name, gate, debug)  # the client takes a dict where it types a V1Pod
    core.create_namespaced_pod(namespace, body)
    thread.join(150)
    if "running" not in seen:
        raise RuntimeError(f"{name} was not seen Running")

    def logs(container: str) -> str:
        deadline = time.time() + 60
        while True:
            try:
                text: str = core.read_namespaced_pod_log(
                    name, namespace, container=container, timestamps=container != "builder"
                )
                if container == "builder" and "START" not in text:
                    raise ValueError("not yet")
                return text
            except (client.ApiException, ValueError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    daemon_log = logs(rootless.CONTAINER)
    # the daemon's START line is its first: with --timestamps the line is "<stamp> START …"
    daemon_start = _start_of("\n".join(p.split(" ", 1)[1] for p in daemon_log.splitlines()))
    server = _server_at(daemon_log)
    builder = _start_of(logs("builder"))
    if debug:
        say(f"{name}'s daemon:\n{daemon_log}")
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    points = [
        ("sidecar_start", daemon_start),
        ("daemon_ready", server),
        ("builder_start", builder),
        ("running_seen", seen["running"]),
    ]
    result = {"total": round(seen["running"] - created, 2)}
    previous = created
    for label, at in points:
        result[label] = round(at - previous, 2)
        previous = at
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5)
    parser.add_argument(
        "--gate", choices=["executor", "probe", "hook", "none", "parallel"], default="executor"
    )
    parser.add_argument("--debug", action="store_true", help="buildkitd --debug, its log shown")
    args = parser.parse_args(argv)
    kubeconfig = sh(str(ROOT / "tests/cluster/up.sh")).strip().splitlines()[-1].split("=", 1)[1]
    sh(str(ROOT / "tests/cluster/standins/moby-buildkit/ensure.sh"), "--rootless", "--load")
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    namespace = f"bhs-bench-{uuid.uuid4().hex[:8]}"
    labels = {"pod-security.kubernetes.io/enforce": "baseline"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=labels))
    )
    runs = []
    try:
        for i in range(args.pods):
            runs.append(measure_pod(core, namespace, args.gate, args.debug))
            say(f"pod {i}: {runs[-1]}")
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")
    medians = {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
    print(json.dumps({"gate": args.gate, "runs": runs, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
