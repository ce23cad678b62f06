"""Cold build and content-only rebuild per ``builder.type``, side by side, in one run, with
where the seconds of each build go (issue 24).

Run from the repository root, on the test cluster (hold ``/tmp/cluster.lock``):
``.venv/bin/python -m bench.builders_kube [--pairs 2] [--seconds 30]
[--builders buildkit,buildkit-external,buildkit-rootless]``.

For each builder the released chart (``make release``, tests/cluster/releases.py) is installed
into a namespace of its own, labelled with the Pod Security level the builder needs, its
service scaled to 0; the service runs in this process with the kubernetes executor and the
settings the chart gives it (read from the chart's ConfigMap). ``buildkit``: the release's
daemon; ``buildkit-external``: an operator's daemon in another namespace
(tests/cluster/builders.py); ``buildkit-rootless``: a daemon in each build pod. Each pair is
a new repository with the same Dockerfile (an environment step of ``--seconds``) built cold,
then a commit changing only content; before each build the builder's local cache is emptied
(the daemon's pod replaced; a rootless daemon is new with every pod), so only the registry
cache helps. Every build's log line and state is timestamped as it reaches the service, and a
watch of the namespace's pods sees the build pod become Running; from these, per build:

- ``pod_running``: trigger (the request) to the build pod Running;
- ``to_build``: pod Running to BuildKit's first step (clone, repo2docker, buildx setup);
- ``steps``: to ``exporting to image`` (cache import, FROM, the Dockerfile's steps);
- ``push``: to ``exporting cache`` (the image's layers and manifest);
- ``cache_export``: to the build's end as the service sees it (cache export, pod exit).

The JSON keeps every rebuild's log lines with their seconds since the request
(``rebuild_logs``), for the breakdown within the segments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from jobs.factory import make_service
from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import load_settings
from testkit.components import GitRepo, git, wait_until
from tests.cluster import builders
from tests.cluster.enforcement import node_egress, port_of
from tests.cluster.releases import Release, bench_release

from .common import ROOT, say
from .kubernetes import NODE_IP, git_daemon, sh
from .rebuild_cache import expensive_dockerfile
from .rebuild_cache_kube import node_registry

RELEASE = "bench"
FULLNAME = f"{RELEASE}-binderhub-service"
LEVELS = {
    "buildkit": "privileged",
    "buildkit-external": "restricted",
    "buildkit-rootless": "baseline",
}
MARKS = (
    ("to_build", ("#1 [internal]", "#0 building with")),
    ("steps", ("exporting to image",)),
    ("push", ("exporting cache",)),
)


class PodWatch:
    """Local times at which pods of a namespace were first seen Running: {name: time}."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.running: dict[str, float] = {}
        self._stop = threading.Event()
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in w.stream(  # type: ignore[no-untyped-call]
                    self._core.list_namespaced_pod, self._namespace, timeout_seconds=5
                ):
                    pod = event["object"]
                    if pod.status.phase == "Running":
                        self.running.setdefault(pod.metadata.name, time.monotonic())
                    if self._stop.is_set():
                        w.stop()  # type: ignore[no-untyped-call]
            except ApiException:
                # the API server answers 504 "Too large resource version" when the watch
                # resumes ahead of its cache: list and watch again (it killed the thread)
                time.sleep(0.2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


async def timed_build(
    service: BuildService,
    pods: PodWatch,
    url: str,
    sha: str,
    lines: list[tuple[float, str]] | None = None,
) -> dict[str, float]:
    """One build of ``url@sha``, its seconds in total and per segment (module docstring);
    with ``lines``, each log line appended as (seconds since the request, text)."""
    start = time.monotonic()
    outcome = await service.request(url, sha)
    if outcome.build is None:
        raise RuntimeError(f"expected a new build of {url}@{sha}, got {outcome.status}")
    build = service.get(outcome.build.id)
    seen: dict[str, float] = {}
    async with service.events.subscribe(build.id) as events:
        while not build.state.finished:
            event = await events.get()
            now = time.monotonic()
            if lines is not None:
                lines.append((round(now - start, 3), event.message.rstrip()))
            for name, needles in MARKS:
                if name not in seen and any(n in event.message for n in needles):
                    seen[name] = now
    end = time.monotonic()
    if build.state is not BuildState.BUILT:
        raise RuntimeError(f"build of {url}@{sha} failed: {build.error}")
    running = [t for t in pods.running.values() if t >= start]
    if lines is not None and running:
        lines.append((round(min(running) - start, 3), "(the bench's watch: build pod Running)"))
        lines.sort(key=lambda line: line[0])
    points = [("pod_running", min(running) if running else start)]
    points += [(name, seen.get(name, points[-1][1])) for name, _ in MARKS]
    points.append(("cache_export", end))
    result = {"total": end - start}
    previous = start
    for name, at in points:
        result[name] = max(0.0, at - previous)
        previous = max(previous, at)
    return result


def chart_settings(core: client.CoreV1Api, namespace: str, kubeconfig: str, work: Path) -> Any:
    """The settings the chart gives its service, for a service in this process."""
    config_map: Any = core.read_namespaced_config_map(FULLNAME, namespace)
    data = config_map.data["config.yaml"]
    settings: dict[str, Any] = yaml.safe_load(data)
    settings["kubernetes"]["kubeconfig"] = kubeconfig
    settings["state_path"] = str(work / f"state-{namespace}" / "builds.sqlite")
    settings.pop("listen", None)
    secret = core.read_namespaced_secret(FULLNAME, namespace).data or {}
    if "docker-config.json" in secret:
        path = work / f"docker-config-{namespace}.json"
        path.write_bytes(base64.b64decode(secret["docker-config.json"]))
        settings["registry"]["docker_config"] = str(path)
    return load_settings(None, **settings)


@contextlib.contextmanager
def namespace_for(core: client.CoreV1Api, level: str) -> Iterator[str]:
    name = f"bhs-bench-{uuid.uuid4().hex[:8]}"
    labels = {"pod-security.kubernetes.io/enforce": level}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def replace_pod(
    core: client.CoreV1Api, namespace: str, selector: str, make: Callable[[], None] | None
) -> None:
    """Delete the pods of ``selector`` (``make`` creates a bare pod's replacement); return
    when a new one is Ready."""
    listed: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
    old = {str(p.metadata.name): str(p.metadata.uid) for p in listed}
    for name in old:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    if make is not None:
        wait_until(
            lambda: not core.list_namespaced_pod(namespace, label_selector=selector).items,
            timeout=120,
        )
        make()

    def ready() -> bool:
        now: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
        return any(
            p.metadata.uid not in old.values()
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            for p in now
        )

    wait_until(ready, timeout=180)


def _answers(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def bench_builder(
    builder: str,
    *,
    api: client.ApiClient,
    kubeconfig: str,
    helm: str,
    release: Release,
    registry: str,
    git_port: int,
    work: Path,
    pairs: int,
    seconds: int,
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    values: dict[str, Any] = {"replicas": 0, "builder": {"type": builder}}
    empty: Callable[[], None] = lambda: None  # noqa: E731
    with contextlib.ExitStack() as stack:
        namespace = stack.enter_context(namespace_for(core, LEVELS[builder]))
        if builder == "buildkit":
            values["builder"]["buildkit"] = {"insecureRegistries": [registry]}
            selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=buildkit"
            empty = lambda: replace_pod(core, namespace, selector, None)  # noqa: E731
        elif builder == "buildkit-external":
            daemon_ns = stack.enter_context(namespace_for(core, "privileged"))
            host = f"buildkitd.{daemon_ns}.svc"
            ca, server, client_pem = builders.make_certificates([host])
            core.create_namespaced_secret(
                daemon_ns, builders.tls_secret("buildkitd-tls", ca, server)
            )
            core.create_namespaced_secret(
                namespace, builders.tls_secret("buildkit-client", ca, client_pem)
            )
            config_map, pod, service = builders.external_daemon_objects(
                daemon_ns, "docker.io/moby/buildkit:v0.34.2", [registry]
            )
            core.create_namespaced_config_map(daemon_ns, config_map)
            core.create_namespaced_service(daemon_ns, service)

            def make() -> None:
                core.create_namespaced_pod(daemon_ns, pod)

            make()
            # the service runs in this process, outside the cluster's DNS: it reaches the
            # daemon's Service at its cluster IP (the node routes it), the certificate's
            # name given apart
            made: Any = core.read_namespaced_service("buildkitd", daemon_ns)
            cluster_ip = made.spec.cluster_ip

            def empty_external() -> None:
                # a new daemon, and its Service answering, before the build is asked for:
                # else the build waits for the queue's next check of the daemon
                replace_pod(core, daemon_ns, "app=buildkitd", make)
                wait_until(lambda: _answers(cluster_ip, 1234), timeout=60)

            empty = empty_external
            values["builder"]["external"] = {
                "host": f"tcp://{cluster_ip}:1234",
                "tlsSecret": "buildkit-client",
                "tlsServerName": host,
                # policies see the daemon's pod address, not its Service's (issue 23)
                "networkPolicyPeers": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": daemon_ns}
                        },
                        "podSelector": {"matchLabels": {"app": "buildkitd"}},
                    }
                ],
            }
        elif builder == "buildkit-rootless":
            sh(str(ROOT / "tests/cluster/standins/moby-buildkit/ensure.sh"), "--rootless", "--load")
            values["builder"]["rootless"] = {"insecureRegistries": [registry]}
        # the chart's NetworkPolicies (on by default, issue 23): build pods and the daemon
        # reach the git daemon and the registry on the node, as for a private registry
        values["networkPolicy"] = node_egress(NODE_IP, git_port, port_of(registry))
        (work / f"values-{builder}.json").write_text(json.dumps(values))
        sh(helm, "--kubeconfig", kubeconfig, "--namespace", namespace, "install", RELEASE,
           release.chart, "--version", release.version, "--plain-http",
           "-f", str(work / f"values-{builder}.json"), "--wait", "--timeout", "5m")  # fmt: skip
        settings = chart_settings(core, namespace, kubeconfig, work)
        settings = settings.model_copy(
            update={
                "image_prefix": f"{registry}/{builder}-",
                "registry": settings.registry.model_copy(update={"url": f"http://{registry}"}),
                "allowed_repos": ["*"],
            }
        )
        content = expensive_dockerfile(f"{registry}/debian:bookworm", seconds)

        def new_repo(name: str) -> GitRepo:
            path = work / "repos" / name
            path.mkdir(parents=True)
            git("init", "-q", "-b", "main", cwd=path)
            repo = GitRepo(path, f"git://{NODE_IP}:{git_port}/{name}")
            repo.commit({"Dockerfile": content}, "environment")
            return repo

        pods = PodWatch(api, namespace)
        stack.callback(pods.close)

        async def run() -> dict[str, Any]:
            service = make_service(settings)
            await service.start()
            try:
                return await measure(service, pods, new_repo, pairs, empty)
            finally:
                await service.close()

        result = asyncio.run(run())
    return {"builder": builder, "level": LEVELS[builder], "environment_step_s": seconds, **result}


async def measure(
    service: BuildService,
    pods: PodWatch,
    new_repo: Callable[[str], GitRepo],
    pairs: int,
    empty: Callable[[], None],
) -> dict[str, Any]:
    cold: list[dict[str, float]] = []
    rebuild: list[dict[str, float]] = []
    logs: list[list[tuple[float, str]]] = []
    for i in range(pairs):
        repo = new_repo(f"builders-{uuid.uuid4().hex[:8]}")
        sha = repo.commit({"a.ipynb": f"{i}"}, "first")
        await asyncio.to_thread(empty)
        cold.append(await timed_build(service, pods, repo.url, sha))
        sha = repo.commit({"a.ipynb": f"{i} edited"}, "content only")
        await asyncio.to_thread(empty)
        logs.append([])
        rebuild.append(await timed_build(service, pods, repo.url, sha, logs[-1]))
        times = f"cold {cold[-1]['total']:.1f} s, rebuild {rebuild[-1]['total']:.1f} s"
        say(f"pair {i + 1}/{pairs}: {times}")

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}

    c, r = medians(cold), medians(rebuild)
    return {"pairs": pairs, "cold": c, "rebuild": r, "ratio": round(r["total"] / c["total"], 3),
            "cold_runs": cold, "rebuild_runs": rebuild, "rebuild_logs": logs}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--builders", default="buildkit,buildkit-external,buildkit-rootless")
    args = parser.parse_args(argv)
    kubeconfig = sh(str(ROOT / "tests/cluster/up.sh")).strip().splitlines()[-1].split("=", 1)[1]
    helm = sh(str(ROOT / "tests/cluster/helm-path.sh")).strip().splitlines()[-1]
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    release = bench_release(helm)  # also puts the daemon's stand-in on the node
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with node_registry(work) as registry, git_daemon(work / "repos") as port:
            for builder in args.builders.split(","):
                say(f"builder {builder}")
                results.append(
                    bench_builder(
                        builder,
                        api=api,
                        kubeconfig=kubeconfig,
                        helm=helm,
                        release=release,
                        registry=registry,
                        git_port=port,
                        work=work,
                        pairs=args.pairs,
                        seconds=args.seconds,
                    )
                )
    for result in results:
        say(f"{result['builder']}: cold {result['cold']['total']} s, rebuild "
            f"{result['rebuild']['total']} s, ratio {result['ratio']}")  # fmt: skip
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
