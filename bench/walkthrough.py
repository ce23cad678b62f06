"""The walkthrough's path, push to a user's server, timed on the real test cluster.

Run from the repository root: ``.venv/bin/python -m bench.walkthrough [--trials N]``
(under ``flock /tmp/cluster.lock`` when others use the cluster).

It sets up what tests/cluster/test_walkthrough.py does (the test hub set up from the
walkthrough's zero-to-jupyterhub values and this chart, released into the node's registry,
with the walkthrough's values, the Docker-Hub-like registry, the BuildKit builder, a git
daemon on the node; tests/cluster/walkthrough.py) and then, per trial, makes a commit with new
content and measures from the moment its signed push is sent:

- ``build``: until the service's API says the build is ``built`` (polled every 0.5 s);
- ``spawn_cold``: the user's server start request until the hub says it is ready, with the
  image not yet on the node; ``pull``: the kubelet's own figure for that pull (its
  ``Pulled`` event, "Successfully pulled image ... in X");
- ``spawn_warm``: the same image started again after the server was stopped (the image
  is on the node). Goal: at most 10 s.

The namespaces ``jhub`` and ``binder`` are left for a look afterwards; the next run (or
the e2e test) replaces them.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from testkit.components import git
from tests.cluster import walkthrough as w
from tests.cluster.releases import bench_release

from .kubernetes import NODE_IP, git_daemon

CREDENTIALS = ("builder", secrets.token_hex(8))
GOAL_SPAWN_WARM_S = 10.0
PULLED = re.compile(r"Successfully pulled image \"(?P<image>[^\"]+)\" in (?P<s>[0-9.]+)(?P<u>m?s)")


def pull_seconds(core_v1: client.CoreV1Api, image: str) -> float | None:
    """The kubelet's time for pulling ``image`` into the hub's namespace's pods."""
    for event in core_v1.list_namespaced_event(w.HUB_NS).items:
        m = PULLED.search(event.message or "")
        if event.reason == "Pulled" and m and m["image"] == image:
            return float(m["s"]) / (1000 if m["u"] == "ms" else 1)
    return None


class Repo:
    """A repository on the bench's git daemon (a working tree it serves as it is)."""

    def __init__(self, base: Path, port: int, name: str, dockerfile: str) -> None:
        self.path = base / name
        self.url = f"git://{NODE_IP}:{port}/{name}"
        self.path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=self.path)
        (self.path / "Dockerfile").write_text(dockerfile)

    def commit(self, notes: str) -> str:
        """Commit README.md with ``notes`` on main; the new commit's SHA."""
        (self.path / "README.md").write_text(notes)
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "-m", "notes", cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)


def built_image(
    hub: w.Hub, repo: Repo, tokens: dict[str, str], timeout: float = 1800.0
) -> tuple[str, str, float]:
    """Commit, send the signed push, wait for ``built``: the commit, the image and the
    push's monotonic time. Raises ``RuntimeError`` after ``timeout`` seconds."""
    sha = repo.commit(f"notes {secrets.token_hex(8)}\n")
    body, headers = w.signed_push(tokens["webhook"], repo.url, sha)
    pushed = time.monotonic()
    answer = hub.http.post("/services/binder/hooks/github", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    (build,) = answer.json()["builds"]
    while True:
        state = hub.request("GET", f"/services/binder/api/v1/builds/{build['id']}").json()
        if state["state"] in ("built", "failed", "cancelled"):
            break
        if time.monotonic() - pushed > timeout:
            raise RuntimeError(f"build {build['id']} not done within {timeout} s")
        time.sleep(0.5)
    assert state["state"] == "built", state.get("error")
    return sha, str(state["image"]), pushed


def trial(
    hub: w.Hub, core_v1: client.CoreV1Api, repo: Repo, tokens: dict[str, str]
) -> dict[str, Any]:
    """One commit: its push, build, first (cold) and second (warm) spawn."""
    user = f"bench-{secrets.token_hex(3)}"
    hub.create_user(user)
    sha, image, t0 = built_image(hub, repo, tokens)
    t_built = time.monotonic()
    options = w.profile_options(hub, tokens["hub-service"], image)
    w.start_server(hub, user, options)
    t_ready = time.monotonic()
    w.stop_server(hub, user)
    t1 = time.monotonic()
    w.start_server(hub, user, options)
    t_warm = time.monotonic() - t1
    w.stop_server(hub, user)
    return {
        "sha": sha,
        "build": t_built - t0,
        "spawn_cold": t_ready - t_built,
        "pull": pull_seconds(core_v1, image),
        "spawn_warm": t_warm,
        "push_to_ready": t_ready - t0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args(argv)
    out = subprocess.run(
        [str(w.CLUSTER_DIR / "up.sh")], check=True, capture_output=True, text=True
    ).stdout
    kubeconfig = out.strip().splitlines()[-1].split("=", 1)[1]
    helm = subprocess.run(
        [str(w.CLUSTER_DIR / "helm-path.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    api = config.new_client_from_config(config_file=kubeconfig)
    core_v1 = client.CoreV1Api(api)
    tokens = {name: secrets.token_hex(32) for name in ("hub-service", "e2e", "webhook")}
    hub_image = w.hub_image("local/debian:bookworm")
    release = bench_release(helm)
    with tempfile.TemporaryDirectory() as tmp_, git_daemon(Path(tmp_, "repos")) as port:
        tmp = Path(tmp_)
        with w.pod_registry(tmp / "registry", NODE_IP, CREDENTIALS) as registry:
            base = w.push_singleuser_base(hub_image, registry, CREDENTIALS, tmp)
            repo = Repo(tmp / "repos", port, "course.git", w.course_dockerfile(base))
            hub = w.install_hub(api, hub_image, base, registry, CREDENTIALS, tokens, tmp)
            overrides = w.binder_test_values(registry, repo.url, CREDENTIALS[1], tokens)
            # the cold spawn pulls: no pre-pull (bench/prepull.py measures it)
            overrides["prepull"] = {"enabled": False}
            w.install_service(helm, kubeconfig, release, overrides, tmp)
            deadline = time.monotonic() + 120  # the hub's proxy routes to it once it is ready
            while hub.http.get("/services/binder/health").status_code != 200:
                assert time.monotonic() < deadline, "the service is not reachable through the hub"
                time.sleep(0.5)
            results = [trial(hub, core_v1, repo, tokens) for _ in range(args.trials)]
    report(results)
    return 0


def report(results: list[dict[str, Any]]) -> None:
    print(json.dumps(results, indent=2))
    for key in ("build", "pull", "spawn_cold", "spawn_warm", "push_to_ready"):
        values = [r[key] for r in results if r[key] is not None]
        if values:
            each = ", ".join(f"{v:.2f}" for v in values)
            print(f"{key:14} median {statistics.median(values):7.2f} s  ({each})")
    warm = statistics.median(r["spawn_warm"] for r in results)
    verdict = "met" if warm <= GOAL_SPAWN_WARM_S else "NOT met"
    print(f"goal: spawn with the image on the node <= {GOAL_SPAWN_WARM_S} s: {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
