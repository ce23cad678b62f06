"""Pre-pull through JupyterHub: a user server's spawn from a large image, started with the
hub's REST API, with and without pre-pull, in one run (issue 26).

Run from the repository root, on the test cluster, holding its lock:
``flock /tmp/cluster.lock .venv/bin/python -m bench.prepull_hub [--reps 3] [--mib 1024]``.

It sets up what tests/cluster/test_walkthrough.py does (the test hub from the walkthrough's
zero-to-jupyterhub values in ``jhub``, with KubeSpawner; this chart, released into the
node's registry, in ``binder`` with the walkthrough's values, whose pre-pull runs in
``jhub`` with z2jh's ``image-pull-secret``; the Docker-Hub-like token registry; the BuildKit
builder; a git daemon on the node; tests/cluster/walkthrough.py), with a repository whose
Dockerfile starts ``FROM`` the single-user base and, after copying the repository, writes
``--mib`` MiB of random (incompressible) bytes: every commit's image has a new large layer
of its own that no node has. Then ``--reps`` trials without pre-pull
(``prepull.enabled: false``), ``helm upgrade`` with it on, and ``--reps`` trials with it.
A trial commits, sends the signed push through the hub's proxy and waits until the
service's API says ``built``; with pre-pull, it then waits until ``GET /api/v1/prepull``
says every selected node has the image (*push → present*, from the push); then:

- *spawn*: from the hub's REST call starting the user's server (``POST
  /hub/api/users/<user>/server`` with the profile the service offers for the image) until
  the hub says the server is ready (polled every 0.2 s); the kubelet's ``Pulled`` event
  gives its own pull time, or says "already present".

After each trial the server is stopped and the image removed from the node (disk).
Medians per mode; JSON in ``bench/results/``. Not a test: nothing is asserted about times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.cluster import walkthrough as w
from tests.cluster.conftest import CRICTL
from tests.cluster.releases import bench_release

from .common import RESULTS_DIR, machine_info, say
from .kubernetes import NODE_IP, git_daemon
from .prepull import PULLED, node_has, remove_from_node
from .walkthrough import Repo, built_image

CREDENTIALS = ("builder", secrets.token_hex(8))
TIMEOUT_S = 1800.0


def large_dockerfile(base: str, mib: int) -> str:
    """The walkthrough's course Dockerfile, then ``mib`` MiB of random bytes in a layer
    that follows the repository's (new at every commit)."""
    return w.course_dockerfile(base) + f"RUN head -c {mib * 1024 * 1024} /dev/urandom > /tmp/blob\n"


def trial(
    hub: w.Hub, core_v1: client.CoreV1Api, repo: Repo, tokens: dict[str, str], prepull: bool
) -> dict[str, Any]:
    """One commit: its build, (with pre-pull) its arrival on the node, the hub's spawn."""
    user = f"bench-{secrets.token_hex(3)}"
    hub.create_user(user)
    _, image, pushed = built_image(hub, repo, tokens, TIMEOUT_S)
    build_s = time.monotonic() - pushed
    present_s = None
    if prepull:
        while not w.prepulled(hub, image):
            if time.monotonic() - pushed > TIMEOUT_S:
                raise RuntimeError(f"{image} not pre-pulled within {TIMEOUT_S} s")
            time.sleep(0.2)
        present_s = time.monotonic() - pushed
    on_node = node_has(image)
    options = w.profile_options(hub, tokens["hub-service"], image)
    started = time.monotonic()
    w.start_server(hub, user, options, timeout=TIMEOUT_S)
    spawn_s = time.monotonic() - started
    selector = f"component=singleuser-server,hub.jupyter.org/username={user}"
    (pod,) = core_v1.list_namespaced_pod(w.HUB_NS, label_selector=selector).items
    events = w.pod_events(core_v1, str(pod.metadata.name if pod.metadata else ""))
    pulled = [
        e.message or "" for e in events if e.reason == "Pulled" and image in (e.message or "")
    ]
    pull = next((m.group(1) for m in map(PULLED.search, pulled) if m), None)
    w.stop_server(hub, user)
    size = image_size(image)
    remove_from_node(image, w.HUB_NS)
    return {
        "image": image,
        "image_bytes": size,
        "build_s": round(build_s, 3),
        "push_to_present_s": None if present_s is None else round(present_s, 3),
        "on_node_before_spawn": on_node,
        "spawn_s": round(spawn_s, 3),
        "kubelet_pull": pull,
        "already_present": any("already present on machine" in m for m in pulled),
    }


def image_size(image: str) -> int | None:
    """The image's size as the node's containerd counts it (its compressed content)."""
    from .prepull import crictl

    for found in json.loads(crictl("images", "-o", "json"))["images"]:
        if image in (found.get("repoTags") or []):
            return int(found["size"])
    return None


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args(argv)
    if not CRICTL.exists():
        raise SystemExit(f"no {CRICTL}: run tests/cluster/test_prepull.py once (it builds it)")
    out = subprocess.run(
        [str(w.CLUSTER_DIR / "up.sh")], check=True, capture_output=True, text=True
    ).stdout
    kubeconfig = out.strip().splitlines()[-1].split("=", 1)[1]
    helm = subprocess.run(
        [str(w.CLUSTER_DIR / "helm-path.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    core_v1 = client.CoreV1Api(api)
    tokens = {name: secrets.token_hex(32) for name in ("hub-service", "e2e", "webhook")}
    hub_image = w.hub_image("local/debian:bookworm")
    release = bench_release(helm)
    trials: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp_, git_daemon(Path(tmp_, "repos")) as port:
        tmp = Path(tmp_)
        with w.pod_registry(tmp / "registry", NODE_IP, CREDENTIALS) as registry:
            base = w.push_singleuser_base(hub_image, registry, CREDENTIALS, tmp)
            repo = Repo(tmp / "repos", port, "course.git", large_dockerfile(base, args.mib))
            hub = w.install_hub(api, hub_image, base, registry, CREDENTIALS, tokens, tmp)
            try:
                for mode in ("without", "with"):
                    overrides = w.binder_test_values(registry, repo.url, CREDENTIALS[1], tokens)
                    overrides["prepull"]["enabled"] = mode == "with"
                    say(f"service with prepull.enabled={mode == 'with'}")
                    w.install_service(helm, kubeconfig, release, overrides, tmp)
                    deadline = time.monotonic() + 300
                    while hub.http.get("/services/binder/health").status_code != 200:
                        assert time.monotonic() < deadline, "the service is not reachable"
                        time.sleep(0.5)
                    for rep in range(args.reps):
                        result = trial(hub, core_v1, repo, tokens, prepull=mode == "with")
                        say(f"{mode} pre-pull, rep {rep + 1}: {json.dumps(result)}")
                        trials[mode].append(result)
            finally:
                hub.close()
                w.remove_all(core_v1)
    summary = {
        mode: {
            "spawn_s": median([t["spawn_s"] for t in ts]),
            "build_s": median([t["build_s"] for t in ts]),
            **(
                {"push_to_present_s": median([t["push_to_present_s"] for t in ts])}
                if mode == "with"
                else {}
            ),
        }
        for mode, ts in trials.items()
        if ts
    }
    result = {
        "reps": args.reps,
        "mib": args.mib,
        "medians": summary,
        "trials": trials,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"prepull-hub-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
