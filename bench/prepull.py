"""Pre-pull on the test cluster: a user pod's spawn with and without the image on the node,
and the time from a push to "present on every selected node" (issue 26).

Run from the repository root, on the test cluster:
``.venv/bin/python -m bench.prepull [--reps 3] [--mib 1024]``: it builds
and pushes its images first, then holds ``/tmp/cluster.lock`` while it uses the cluster.

Two images are built FROM ``local/debian:bookworm`` and pushed to the node's registry (the
one the cluster tests use, ``127.0.0.1:5000``): *large*, with a layer of ``--mib`` MiB of
random (incompressible) bytes, and *small*, the base with a label. Then, per repetition and
per image, in a fresh namespace:

1. the pre-pull keeper (``jobs.prepull.keeper.PrepullKeeper``, in this process, with its
   Lease and DaemonSet, as ``serve`` runs it) is given a catalog that offers nothing, and
   the image is removed from the node's containerd (``crictl rmi``);
2. *spawn without pre-pull*: a user pod of the image (``IfNotPresent``, Pod Security
   "restricted", as KubeSpawner's) is created; timed from the create call until a watch
   sees it ``Running`` (its container started); the kubelet's ``Pulled`` event gives its
   own pull time;
3. the pod is deleted and the image removed again; *push → present*: the catalog now offers
   the image (as after its build) and the keeper runs a pass (what a ``built`` event's poke
   does); timed until the DaemonSet's state (``PrepullDaemonSet.state``, what
   ``GET /api/v1/prepull`` serves, which caches it up to 5 s) says the image is present on
   every selected node;
4. *spawn with pre-pull*: the same pod again, timed the same way; its events must say the
   image was already present.

Medians over the repetitions; JSON in ``bench/results/``. Not a test: nothing is asserted
about times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from jobs.model import Build, BuildState
from jobs.prepull.keeper import PrepullKeeper
from jobs.settings import load_settings
from tests.cluster.conftest import (
    BASE_IMAGE,
    CLUSTER_DIR,
    CRICTL,
    DOCKER,
    NAMESPACE_LABEL,
    PAUSE_IMAGE,
    STATE,
)
from tests.cluster.test_prepull import spawn_pod

from .common import RESULTS_DIR, machine_info, say

REGISTRY = "127.0.0.1:5000"
INSTANCE = "bench"
TIMEOUT_S = 900.0
LOCK = "/tmp/cluster.lock"  # noqa: S108 - the lock every cluster user shares
PULLED = re.compile(r"Successfully pulled image \S+ in ([0-9.]+m?s)")


def sh(*cmd: str, timeout: float = 1800) -> str:
    done = subprocess.run(cmd, check=True, text=True, capture_output=True, timeout=timeout)
    return done.stdout


def kubeconfig() -> str:
    """The test cluster's kubeconfig (``up.sh`` starts it when it is down)."""
    out = sh(str(CLUSTER_DIR / "up.sh"), timeout=3600).strip().splitlines()[-1]
    assert out.startswith("KUBECONFIG="), out
    return out.split("=", 1)[1]


def crictl(*args: str) -> str:
    """``crictl`` on the node's containerd (built by tests/cluster/test_prepull.py's fixture)."""
    endpoint = f"unix://{STATE / 'containerd' / 'containerd.sock'}"
    return sh(str(CRICTL), "--runtime-endpoint", endpoint, "--image-endpoint", endpoint, *args)


def node_has(image: str) -> bool:
    images = json.loads(crictl("images", "-o", "json"))["images"]
    return any(image in (i.get("repoTags") or []) for i in images)


def ctr(*args: str) -> str:
    """containerd's own CLI on the node's containerd, in the kubelet's namespace."""
    sock = str(STATE / "containerd" / "containerd.sock")
    return sh("ctr", "--address", sock, "-n", "k8s.io", *args)


def remove_from_node(image: str, namespace: str) -> None:
    """Remove ``image`` from the node's containerd, layers included, so that the next pull
    downloads and unpacks it all again. First the exited containers of ``namespace``'s
    deleted pods that ran it (the kubelet removes them only at its next container garbage
    collection, and their snapshots keep the image's unpacked layers, which a pull then
    reuses instead of fetching: 33 ms for the 1 GiB image), then every reference of the image
    (its tag, digest and config ID) with ``ctr images rm --sync`` (content and snapshots
    collected at once; ``crictl rmi`` leaves them to a later collection)."""
    listed = json.loads(crictl("images", "-o", "json"))["images"]
    ids = [i["id"] for i in listed if image in (i.get("repoTags") or [])]

    def containers_left() -> bool:
        left = False
        for container in json.loads(crictl("ps", "-a", "-o", "json"))["containers"]:
            ours = container["labels"].get("io.kubernetes.pod.namespace") == namespace
            if ours and container["imageRef"] in ids:
                left = True
                if container["state"] == "CONTAINER_EXITED":
                    with contextlib.suppress(subprocess.CalledProcessError):
                        crictl("rm", container["id"])
        return left

    wait(lambda: not containers_left())
    repository = image.rsplit(":", 1)[0]
    refs = ctr("images", "ls", "-q").split()
    gone = [r for r in refs if r in ids or r == image or r.startswith(f"{repository}@")]
    if gone:
        ctr("images", "rm", "--sync", *gone)
    if node_has(image):
        raise RuntimeError(f"{image} stays on the node")


def build_image(name: str, mib: int) -> tuple[str, int]:
    """``REGISTRY/name:<40 hex>`` FROM the base with ``mib`` MiB of random bytes (none: a
    label only), pushed; the image and its size as Docker reports it (bytes)."""
    image = f"{REGISTRY}/{name}:{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
    lines = [f"FROM {BASE_IMAGE}", f"LABEL bench.prepull={image.rsplit(':', 1)[1]}"]
    if mib:
        lines.append(f"RUN head -c {mib * 1024 * 1024} /dev/urandom > /srv/blob")
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text("\n".join(lines) + "\n")
        sh(DOCKER, "build", "-q", "-t", image, ctx)
    size = int(sh(DOCKER, "image", "inspect", "-f", "{{.Size}}", image).strip())
    sh(DOCKER, "push", image)
    sh(DOCKER, "rmi", image)
    return image, size


def user_pod(name: str, image: str) -> dict[str, Any]:
    """The cluster test's spawn stand-in, kept running (``sleep infinity``)."""
    pod: dict[str, Any] = spawn_pod(name, image)
    pod["spec"]["containers"][0]["command"] = ["sleep", "infinity"]
    return pod


def spawn(core: Any, namespace: str, image: str) -> dict[str, Any]:
    """Create a user pod of ``image``; seconds from the create call until it is Running,
    the kubelet's pull time (None: no pull) and whether it said "already present"."""
    name = f"spawn-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    core.create_namespaced_pod(namespace, user_pod(name, image))
    w: Any = watch.Watch()  # type: ignore[no-untyped-call]
    seconds = None
    for event in w.stream(
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        timeout_seconds=int(TIMEOUT_S),
    ):
        if event["object"].status.phase == "Running":
            seconds = time.monotonic() - started
            w.stop()
    if seconds is None:
        raise RuntimeError(f"{name} did not run within {TIMEOUT_S} s")
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    messages = [e.message or "" for e in events.items if e.reason == "Pulled"]
    pull = next((m.group(1) for m in map(PULLED.search, messages) if m), None)
    present = any("already present on machine" in m for m in messages)
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    wait(
        lambda: (
            not core.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}").items
        )
    )
    return {"seconds": round(seconds, 3), "kubelet_pull": pull, "already_present": present}


def wait(predicate: Callable[[], Any], interval: float = 0.2) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(interval)
    return result


def built(image: str) -> Build:
    """The catalog's entry for ``image``: the newest build of a branch."""
    now = time.time()
    return Build(
        id=uuid.uuid4().hex, repo="https://example.org/bench.git", ref="main",
        ref_kind="branch", sha=image.rsplit(":", 1)[1], image=image, name=image,
        state=BuildState.BUILT, trigger="webhook", created_at=now, started_at=now,
        finished_at=now,
    )  # fmt: skip


class Bench:
    """The keeper, its catalog and the cluster's clients, in ``namespace``."""

    def __init__(self, kubeconfig: str, namespace: str, node: str) -> None:
        self.api: Any = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        self.core: Any = client.CoreV1Api(self.api)
        self.namespace = namespace
        self.offer: list[Build] = []
        settings = load_settings(
            None,
            kubernetes={"kubeconfig": kubeconfig, "instance": INSTANCE},
            prepull={
                "enabled": True,
                "namespace": namespace,
                "node_selector": {"kubernetes.io/hostname": node},
                "pause_image": PAUSE_IMAGE,
                "pause_command": [],
                "interval": 600,
            },
        )
        self.keeper = PrepullKeeper.from_settings(
            settings, lambda: {"bench": list(self.offer)}, self.api
        )

    def pulling(self, image: str) -> bool:
        """Some pod of the DaemonSet (old template or new) still names ``image``."""
        for pod in self.core.list_namespaced_pod(self.namespace).items:
            if pod.metadata.name.startswith("spawn-"):
                continue
            if any(c.image == image for c in pod.spec.init_containers or []):
                return True
        return False

    def prepull_pull(self, image: str) -> str | None:
        """The kubelet's latest pull time of ``image`` in a pod of the DaemonSet."""
        events = self.core.list_namespaced_event(self.namespace).items
        pulled = [
            e
            for e in events
            if e.reason == "Pulled"
            and not e.involved_object.name.startswith("spawn-")
            and image in (e.message or "")
        ]
        pulled.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
        found = PULLED.search(pulled[-1].message or "") if pulled else None
        return found.group(1) if found else None

    async def offer_nothing(self, image: str) -> None:
        self.offer = []
        await self.keeper.run_pass()
        wait(lambda: not self.pulling(image))
        remove_from_node(image, self.namespace)

    async def push_to_present(self, image: str) -> tuple[float, str | None]:
        """Seconds from the keeper's pass with ``image`` newly offered until the
        DaemonSet's state says every selected node has it; the kubelet's pull time of
        it in the DaemonSet's pod (None: no pull)."""
        started = time.monotonic()
        self.offer = [built(image)]
        await self.keeper.run_pass()
        while True:
            state = await self.keeper.daemonset.state()
            if any(p.image == image and p.present == state.nodes > 0 for p in state.images):
                return time.monotonic() - started, self.prepull_pull(image)
            if time.monotonic() - started > TIMEOUT_S:
                raise RuntimeError(f"{image} not pre-pulled within {TIMEOUT_S} s")
            await asyncio.sleep(0.2)

    async def trial(self, image: str) -> dict[str, Any]:
        await self.offer_nothing(image)
        cold = spawn(self.core, self.namespace, image)
        await self.offer_nothing(image)
        prepull, pull = await self.push_to_present(image)
        warm = spawn(self.core, self.namespace, image)
        return {
            "cold": cold,
            "push_to_present_s": round(prepull, 3),
            "prepull_kubelet_pull": pull,
            "warm": warm,
        }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


@contextlib.contextmanager
def cluster_lock() -> Iterator[None]:
    """Hold ``/tmp/cluster.lock`` (the test cluster is shared) while the cluster is used."""
    with open(LOCK, "w") as lock:
        say(f"waiting for {LOCK}")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def measure(reps: int, mib: int) -> dict[str, Any]:
    """Build and push both images (without the cluster's lock), then the trials (with it)."""
    if not CRICTL.exists():
        raise SystemExit(f"no {CRICTL}: run tests/cluster/test_prepull.py once (it builds it)")
    say(f"building and pushing the images ({mib} MiB of random bytes, and none)")
    images = {
        "large": build_image("bench-prepull-large", mib),
        "small": build_image("bench-prepull-small", 0),
    }
    with cluster_lock():
        path = kubeconfig()
        sh(str(CLUSTER_DIR / "load-image.sh"), PAUSE_IMAGE)
        trials = asyncio.run(run_trials(path, reps, [(k, i) for k, (i, _) in images.items()]))
    summary = {
        kind: {
            "image": images[kind][0],
            "docker_size_bytes": images[kind][1],
            "spawn_without_prepull_s": median([t["cold"]["seconds"] for t in ts]),
            "spawn_with_prepull_s": median([t["warm"]["seconds"] for t in ts]),
            "push_to_present_s": median([t["push_to_present_s"] for t in ts]),
        }
        for kind, ts in trials.items()
    }
    return {"reps": reps, "mib": mib, "medians": summary, "trials": trials}


async def run_trials(
    path: str, reps: int, images: list[tuple[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    """``reps`` trials of each image, in a fresh namespace (deleted after)."""
    api: Any = config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
    core: Any = client.CoreV1Api(api)
    (node,) = [n.metadata.name for n in core.list_node().items]
    namespace = f"bench-prepull-{uuid.uuid4().hex[:6]}"
    labels = {NAMESPACE_LABEL: "true", "pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
    wait(lambda: core.list_namespaced_service_account(namespace).items)
    bench = Bench(path, namespace, node)
    trials: dict[str, list[dict[str, Any]]] = {kind: [] for kind, _ in images}
    try:
        for rep in range(reps):
            for kind, image in images:
                result = await bench.trial(image)
                say(f"rep {rep + 1} {kind}: {json.dumps(result)}")
                trials[kind].append(result)
    finally:
        await bench.keeper.close()
        core.delete_namespace(namespace, propagation_policy="Background")
        for _kind, image in images:
            with contextlib.suppress(Exception):
                remove_from_node(image, namespace)
    return trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    result = measure(args.reps, args.mib)
    result["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["machine"] = machine_info()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"prepull-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
