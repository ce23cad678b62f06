"""The Kubernetes path against the local one, on the real test cluster.

Run from the repository root: ``.venv/bin/python -m bench.kubernetes [--trials N]``.

Two ``binderhub-service serve`` processes, one with the local executor and one with
the kubernetes executor (admin kubeconfig, a fresh namespace), build fresh commits
of the same repository, interleaved (local, kubernetes, kubernetes, local, ...).
Each build gets its own commit, so that Docker's layer cache helps neither side.

Measured per build, from the moment the POST is sent:
- ``pod_running``: until the build pod's phase is Running (kubernetes only; seen by a
  watch in this process). Goal: under 5 s.
- ``total``: until the API reports the build ``built`` (polled every 50 ms).
The overhead of the Kubernetes path is the difference of the totals' medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from testkit.components import (
    dockerfile,
    free_port,
    git,
    start_registry,
    wait_until,
)
from tests.cluster.releases import bench_release

from .common import API_TOKEN, ROOT, start_server

NODE_IP = "10.244.0.1"
GOAL_POD_RUNNING_S = 5.0


def sh(*cmd: str, **kwargs: Any) -> str:
    done = subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)
    return str(done.stdout)


def builder_image() -> str:
    """The released builder image (``make release`` into the node's registry), on the node."""
    helm = sh(str(ROOT / "tests" / "cluster" / "helm-path.sh")).strip().splitlines()[-1]
    return bench_release(helm).builder_image


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[int]:
    base.mkdir(parents=True)
    port = free_port()
    process = subprocess.Popen(
        [
            "git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all",
            "--listen=127.0.0.1", f"--listen={NODE_IP}", f"--port={port}", str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        yield port
    finally:
        process.terminate()
        process.wait(10)


class PodTimes:
    """When (time.monotonic) each build pod was first seen Running, by build id."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.running: dict[str, float] = {}
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self._stop = False
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            with contextlib.suppress(Exception):
                for event in self._watch.stream(
                    self._core.list_namespaced_pod, self._namespace, timeout_seconds=60
                ):
                    pod = event["object"]
                    if event["type"] == "DELETED" or pod.status.phase != "Running":
                        continue
                    build_id = (pod.metadata.labels or {}).get("binderhub-service/build-id")
                    if build_id and build_id not in self.running:
                        self.running[build_id] = time.monotonic()

    def stop(self) -> None:
        self._stop = True
        self._watch.stop()


def post_and_wait(port: int, repo: str, sha: str) -> tuple[str, float, float]:
    """POST a build; returns (build id, when sent, when the API said built)."""
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    body = json.dumps({"repo": repo, "ref": sha}).encode()
    sent = time.monotonic()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/builds", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        build = json.load(response)
    while True:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/builds/{build['id']}", headers=headers
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            state = json.load(response)["state"]
        if state == "built":
            return build["id"], sent, time.monotonic()
        if state not in ("queued", "running"):
            raise RuntimeError(f"build {build['id']} ended {state}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)

    kubeconfig = sh(str(ROOT / "tests" / "cluster" / "up.sh")).strip().splitlines()[-1]
    kubeconfig = kubeconfig.split("=", 1)[1]
    image = builder_image()
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    namespace = f"bhs-bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    def has_default_account() -> bool:
        try:
            core.read_namespaced_service_account("default", namespace)
        except client.ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    wait_until(has_default_account, timeout=60)
    results: dict[str, list[float]] = {"local": [], "kubernetes": [], "pod_running": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        registry = start_registry(work / "registry")
        times = PodTimes(api, namespace)
        try:
            with git_daemon(work / "repos") as port:
                repo_dir = work / "repos" / "bench.git"
                repo_dir.mkdir(parents=True)
                git("init", "-q", "-b", "main", cwd=repo_dir)
                url = f"git://{NODE_IP}:{port}/bench.git"
                local = start_server(work / "local", registry)
                kube = start_server(
                    work / "kube",
                    registry,
                    extra={
                        "image_prefix": f"{registry.host}/benchk-",
                        "executor": "kubernetes",
                        "kubernetes": {
                            "namespace": namespace,
                            "kubeconfig": kubeconfig,
                            "builder_image": image,
                            "builder_image_pull_policy": "Never",
                        },
                    },
                )
                try:
                    order = ["local", "kubernetes"]
                    for trial in range(args.trials + 1):  # the first pair warms up
                        for which in order:
                            content = f"RUN echo {which}-{trial}-{uuid.uuid4().hex}"
                            (repo_dir / "Dockerfile").write_text(dockerfile(content))
                            git("add", "-A", cwd=repo_dir)
                            git("commit", "-q", "-m", f"{which} {trial}", cwd=repo_dir)
                            sha = git("rev-parse", "HEAD", cwd=repo_dir)
                            server = local if which == "local" else kube
                            build_id, sent, done = post_and_wait(server.port, url, sha)
                            if trial == 0:
                                continue
                            results[which].append(done - sent)
                            if which == "kubernetes":
                                results["pod_running"].append(times.running[build_id] - sent)
                        order.reverse()
                finally:
                    local.stop()
                    kube.stop()
        finally:
            times.stop()
            registry.stop()
            core.delete_namespace(namespace)
            api.close()
    summary = {key: statistics.median(values) for key, values in results.items()}
    summary["overhead"] = summary["kubernetes"] - summary["local"]
    print(json.dumps({"runs": results, "medians": summary}, indent=2))
    verdict = "meets" if summary["pod_running"] < GOAL_POD_RUNNING_S else "MISSES"
    print(
        f"trigger -> pod running: median {summary['pod_running']:.2f} s "
        f"({verdict} the goal of {GOAL_POD_RUNNING_S:g} s); "
        f"build total: local {summary['local']:.2f} s, kubernetes {summary['kubernetes']:.2f} s, "
        f"overhead {summary['overhead']:+.2f} s (medians of {args.trials})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
