"""``rebuild_cache`` on Kubernetes: the chart's BuildKit builder and the registry cache.

Run from the repository root, on the test cluster (it holds ``/tmp/cluster.lock`` while
it runs): ``.venv/bin/python -m bench.rebuild_cache_kube [--pairs 3] [--seconds 30]``.

The released chart (``make release`` into the node's registry, tests/cluster/releases.py)
is installed into a fresh namespace with its default ``builder.type: buildkit`` (buildkitd
on an emptyDir, the chart's ``moby/buildkit`` image: its stand-in on the node) and its
service scaled to 0; the service runs in
this process with the kubernetes executor and the chart's settings for the builder, so
each build is a Job whose pod sends the build to that buildkitd over mTLS. The builder's
local cache is emptied by deleting the buildkitd pod: its Deployment starts a new one on a
new emptyDir. ``measure_pairs`` (bench/rebuild_cache.py) does the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config

from jobs.factory import make_service
from jobs.settings import load_settings
from testkit.components import GitRepo, git, wait_until
from tests.cluster.releases import Release, bench_release

from .common import ROOT, say
from .kubernetes import NODE_IP, git_daemon, sh
from .rebuild_cache import _service_build, expensive_dockerfile, measure_pairs

RELEASE = "bench"
FULLNAME = f"{RELEASE}-binderhub-service"
DOCKER = "/usr/bin/docker"


@contextlib.contextmanager
def node_registry(work: Path) -> Iterator[str]:
    """A registry on every address of the node, holding the Debian base; yields
    ``<node IP>:<port>`` (the Docker daemon pushes at 127.0.0.1, over plain HTTP)."""
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 - pods reach it at the node IP
        port = s.getsockname()[1]
    (work / "registry.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
        f"http:\n  addr: 0.0.0.0:{port}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(work / "registry.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        local = f"127.0.0.1:{port}/debian:bookworm"
        sh(DOCKER, "tag", "local/debian:bookworm", local)
        wait_until(
            lambda: subprocess.run([DOCKER, "push", local], capture_output=True).returncode == 0,
            timeout=60,
        )
        yield f"{NODE_IP}:{port}"
    finally:
        process.terminate()
        process.wait(10)


def install_chart(kubeconfig: str, namespace: str, registry: str, work: Path) -> Release:
    """The released chart (``make release`` into the node's registry) with its service
    scaled to 0; the release."""
    helm = sh(str(ROOT / "tests" / "cluster" / "helm-path.sh")).strip().splitlines()[-1]
    release = bench_release(helm)
    values = {
        "replicas": 0,  # the service runs in this process
        "builder": {"buildkit": {"insecureRegistries": [registry]}},
    }
    (work / "values.json").write_text(json.dumps(values))
    sh(helm, "--kubeconfig", kubeconfig, "--namespace", namespace, "install", RELEASE,
       release.chart, "--version", release.version, "--plain-http",
       "-f", str(work / "values.json"), "--wait", "--timeout", "5m")  # fmt: skip
    return release


def restart_buildkitd(core: client.CoreV1Api, namespace: str) -> None:
    """Delete the buildkitd pod; return when its replacement (a new emptyDir) is Ready."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=buildkit"
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
    old = {str(pod.metadata.name) for pod in pods}
    for name in old:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def ready() -> bool:
        pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
        return any(
            pod.metadata.name not in old
            and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            for pod in pods
        )

    wait_until(ready, timeout=180)


def bench_kubernetes(work: Path, *, pairs: int, seconds: int) -> dict[str, Any]:
    kubeconfig = (
        sh(str(ROOT / "tests" / "cluster" / "up.sh")).strip().splitlines()[-1].split("=", 1)[1]
    )
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    namespace = f"bhs-bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        with node_registry(work) as registry, git_daemon(work / "repos") as port:
            builder = install_chart(kubeconfig, namespace, registry, work).builder_image
            settings = load_settings(
                None,
                executor="kubernetes",
                image_prefix=f"{registry}/rebuild-",
                registry={"url": f"http://{registry}"},
                state_path=work / "state" / "builds.sqlite",
                allowed_repos=["*"],
                kubernetes={
                    "namespace": namespace,
                    "kubeconfig": kubeconfig,
                    "instance": FULLNAME,
                    "builder": "buildkit",
                    "buildkit_host": f"tcp://{FULLNAME}-buildkit.{namespace}.svc:1234",
                    "buildkit_tls_secret": f"{FULLNAME}-buildkit-client",
                    "builder_image": builder,
                    "builder_image_pull_policy": "Never",
                    "run_as_user": 1000,
                },
            )
            content = expensive_dockerfile(f"{registry}/debian:bookworm", seconds)

            def new_repo(name: str) -> GitRepo:
                path = work / "repos" / name
                path.mkdir(parents=True)
                git("init", "-q", "-b", "main", cwd=path)
                repo = GitRepo(path, f"git://{NODE_IP}:{port}/{name}")
                repo.commit({"Dockerfile": content}, "environment")
                return repo

            async def run() -> dict[str, Any]:
                service = make_service(settings)
                await service.start()

                async def empty_cache() -> None:
                    await asyncio.to_thread(restart_buildkitd, core, namespace)

                try:
                    return await measure_pairs(
                        pairs=pairs,
                        new_repo=new_repo,
                        build=lambda url, sha: _service_build(service, url, sha),
                        empty_cache=empty_cache,
                    )
                finally:
                    await service.close()

            result = asyncio.run(run())
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")
        api.close()
    return {"executor": "kubernetes (buildkit)", "environment_step_s": seconds, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_kubernetes(Path(tmp), pairs=args.pairs, seconds=args.seconds)
    say(f"rebuild / cold = {result['ratio']:.3f} (goal <= {result['goal_ratio']})")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
