"""Fixtures for tests against the real single-node test cluster (tests/cluster/up.sh).

- ``kubeconfig`` (session): path of the cluster's kubeconfig; reads ``KUBECONFIG`` when it is
  set, otherwise runs ``up.sh`` (fast when the cluster is already up).
- ``api_client`` (session), ``core_v1``, ``batch_v1``: official ``kubernetes`` client objects.
- ``namespace``: a fresh namespace per test, deleted afterwards; when the test fails, its
  events, pod statuses and container logs are printed (shown with the failure report).
- ``node_ip``: the node's address, where pods reach services running on the node.
- ``registry`` (session): ``host:port`` of a registry on the node (127.0.0.1:5000, reused
  when something already answers there). The kubelet (containerd) pulls from it over plain
  HTTP; pods reach it only with ``hostNetwork: true``, since it listens on loopback.
- ``git_server`` (session): a ``git daemon`` on a free port, listening on 127.0.0.1 and on the
  node IP, so every pod can clone ``git://<node_ip>:<port>/<name>``.
- ``tools_image`` (session): a Debian image with git, curl and Debian's docker client, built
  with the local Docker daemon and loaded into the cluster (use imagePullPolicy: Never).
- ``load_image(name)``: load any local Docker image into the cluster.
- ``helm`` (session): path of the pinned helm binary (v4.1.4).
- ``release`` (session), ``release_of(version)``: ``make release`` of this checkout into the
  session's ``release_registry`` (``releases.py``); ``builder_image``: the released builder
  image, also loaded into the node; ``upstream_buildkit``: the chart's default
  ``docker.io/moby/buildkit`` image on the node (its stand-in, ``standins/moby-buildkit``).
- ``kube``: helpers (``watch_until``, ``wait_for_pod_phase``, ``pod_manifest``, ``wait_for``,
  ``dump_namespace``) without importing this module.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from . import releases

CLUSTER_DIR = Path(__file__).resolve().parent
REPO_DIR = CLUSTER_DIR.parent.parent
STATE = Path(os.environ.get("BHS_CLUSTER_STATE", "/tmp/binderhub-service-cluster"))
NODE_IP = "10.244.0.1"  # keep in step with common.sh
DOCKER = "/usr/bin/docker"
BASE_IMAGE = os.environ.get("BASE_IMAGE", "local/debian:bookworm")
PAUSE_IMAGE = "local/pause:bhs-1"  # tests/cluster/common.sh
NAMESPACE_LABEL = "binderhub-service-test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the real test Kubernetes cluster (tests/cluster)"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item, so fixtures can tell whether the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# ------------------------------------------------------------------------------------------
# the cluster and its clients
# ------------------------------------------------------------------------------------------


def _run(cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Another cluster's KUBECONFIG is used as it is; ours is (re)started with up.sh."""
    path = os.environ.get("KUBECONFIG")
    if path and Path(path).resolve() != (STATE / "kubeconfig").resolve():
        return path
    # A cold start builds Kubernetes (about 11 minutes); a warm one takes well under a minute.
    out = _run([str(CLUSTER_DIR / "up.sh")], timeout=3600, stdout=subprocess.PIPE).stdout
    last = out.strip().splitlines()[-1]
    assert last.startswith("KUBECONFIG="), out
    return last.split("=", 1)[1]


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def batch_v1(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture(scope="session")
def node_ip() -> str:
    return NODE_IP


# ------------------------------------------------------------------------------------------
# a namespace per test, dumped on failure
# ------------------------------------------------------------------------------------------


def dump_namespace(core_v1: client.CoreV1Api, ns: str) -> str:
    """Events, pod statuses and container logs of a namespace, as text."""
    lines: list[str] = [f"===== namespace {ns}: events"]
    try:
        events = core_v1.list_namespaced_event(ns).items
        events.sort(
            key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
        )
        for e in events:
            when = e.last_timestamp or e.event_time or e.metadata.creation_timestamp
            obj = f"{e.involved_object.kind}/{e.involved_object.name}"
            lines.append(f"{when} {e.type} {e.reason} {obj}: {e.message}")
        lines.append(f"===== namespace {ns}: pods")
        pods = core_v1.list_namespaced_pod(ns).items
        for pod in pods:
            st = pod.status
            lines.append(
                f"--- pod {pod.metadata.name}: phase={st.phase} reason={st.reason}"
                f" message={st.message}"
            )
            for cond in st.conditions or []:
                lines.append(
                    f"    condition {cond.type}={cond.status}"
                    f" {cond.reason or ''} {cond.message or ''}"
                )
            for cs in (st.init_container_statuses or []) + (st.container_statuses or []):
                lines.append(
                    f"    container {cs.name}: ready={cs.ready} restarts={cs.restart_count}"
                    f" state={cs.state}"
                )
        for pod in pods:
            containers = (pod.spec.init_containers or []) + pod.spec.containers
            for c in containers:
                lines.append(f"===== logs of {pod.metadata.name}/{c.name}")
                try:
                    lines.append(
                        core_v1.read_namespaced_pod_log(
                            str(pod.metadata.name), ns, container=c.name
                        )
                    )
                except ApiException as exc:
                    lines.append(f"(no logs: {exc.status} {exc.reason})")
    except ApiException as exc:  # the dump must never hide the test's own failure
        lines.append(f"(could not read namespace {ns}: {exc.status} {exc.reason})")
    return "\n".join(lines)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core_v1: client.CoreV1Api) -> Iterator[str]:
    name = f"bhs-test-{uuid.uuid4().hex[:10]}"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={NAMESPACE_LABEL: "true"})
        )
    )
    # Pods cannot be created before the controller manager made the default service account.
    wait_for(
        lambda: _has_default_sa(core_v1, name),
        timeout=60,
        what=f"default service account in {name}",
    )
    try:
        yield name
    finally:
        failed = any(
            getattr(request.node, f"rep_{when}", None)
            and getattr(request.node, f"rep_{when}").failed
            for when in ("setup", "call")
        )
        if failed:
            print(dump_namespace(core_v1, name))
        with contextlib.suppress(ApiException):
            core_v1.delete_namespace(name, propagation_policy="Background")


def _has_default_sa(core_v1: client.CoreV1Api, ns: str) -> bool:
    try:
        core_v1.read_namespaced_service_account("default", ns)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


# ------------------------------------------------------------------------------------------
# waiting: watches and polling with deadlines, never a fixed sleep
# ------------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """The first truthy value of ``predicate()``, asked every ``interval`` seconds; raise
    TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def watch_until(
    list_func: Callable[..., Any],
    predicate: Callable[[str, Any], bool],
    timeout: float,
    what: str,
    **kwargs: Any,
) -> tuple[str, Any]:
    """Watch LIST_FUNC(**kwargs) until PREDICATE(event_type, obj) holds; return that event.

    Starts from a fresh list (so no event is missed between the caller's action and the
    watch) and re-watches when a watch ends before the deadline.
    """
    deadline = time.monotonic() + timeout
    initial = list_func(**kwargs)
    for obj in initial.items:
        if predicate("EXISTING", obj):
            return "EXISTING", obj
    rv = initial.metadata.resource_version
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        w = watch.Watch()
        try:
            for event in w.stream(
                list_func,
                resource_version=rv,
                timeout_seconds=max(1, int(remaining)),
                _request_timeout=remaining + 10,
                **kwargs,
            ):
                obj = event["object"]
                if event["type"] == "ERROR":
                    break  # list again below
                rv = obj.metadata.resource_version
                if predicate(event["type"], obj):
                    return event["type"], obj
            else:
                continue  # the watch timed out on the server: watch again
        except ApiException as exc:
            if exc.status != 410:  # 410 Gone: too old a resource version, list again
                raise
        finally:
            w.stop()
        # the watch failed: start again from a fresh list
        fresh = list_func(**kwargs)
        for obj in fresh.items:
            if predicate("EXISTING", obj):
                return "EXISTING", obj
        rv = fresh.metadata.resource_version


def wait_for_pod_phase(
    core_v1: client.CoreV1Api, ns: str, name: str, phases: set[str], timeout: float = 180
) -> client.V1Pod:
    """Wait until the pod is in one of PHASES; fail early if it ends in another final phase."""
    final = {"Succeeded", "Failed"}

    def done(_type: str, pod: client.V1Pod) -> bool:
        phase = pod.status.phase if pod.status else None
        if phase in final and phase not in phases:
            raise AssertionError(f"pod {ns}/{name} ended {phase}, not {sorted(phases)}")
        return phase in phases

    _, pod = watch_until(
        core_v1.list_namespaced_pod,
        done,
        timeout,
        f"pod {ns}/{name} to be {sorted(phases)}",
        namespace=ns,
        field_selector=f"metadata.name={name}",
    )
    assert isinstance(pod, client.V1Pod)
    return pod


def pod_manifest(
    name: str,
    image: str,
    command: list[str],
    *,
    host_network: bool = False,
    pull_policy: str = "Never",
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    restart_policy: str = "Never",
) -> Any:
    """A Pod as a dict (the client takes one where it types a ``V1Pod``)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart_policy,
            "hostNetwork": host_network,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": command,
                    "volumeMounts": mounts or [],
                }
            ],
            "volumes": volumes or [],
        },
    }


class Helpers:
    """The waiting and manifest helpers, as a fixture (test modules need not import conftest)."""

    wait_for = staticmethod(wait_for)
    watch_until = staticmethod(watch_until)
    wait_for_pod_phase = staticmethod(wait_for_pod_phase)
    pod_manifest = staticmethod(pod_manifest)
    dump_namespace = staticmethod(dump_namespace)


@pytest.fixture(scope="session")
def kube() -> type[Helpers]:
    return Helpers


# ------------------------------------------------------------------------------------------
# services on the node, and images
# ------------------------------------------------------------------------------------------


def _docker_ok() -> bool:
    return subprocess.run([DOCKER, "version"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker(kubeconfig: str) -> str:
    """The Docker daemon on the node (up.sh has started one if none ran); the client's path."""
    if not _docker_ok():
        script = REPO_DIR / "scripts" / "ensure-docker.sh"
        assert script.exists(), "no Docker daemon answers and scripts/ensure-docker.sh is missing"
        _run(["bash", str(script)], timeout=600)
    return DOCKER


def _image_exists(image: str) -> bool:
    return subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def base_image(docker: str) -> str:
    """local/debian:bookworm, made with debootstrap when the daemon lacks it."""
    if _image_exists(BASE_IMAGE):
        return BASE_IMAGE
    script = REPO_DIR / "scripts" / "ensure-base-image.sh"
    if script.exists():
        _run(["bash", str(script)], timeout=1200)
    else:
        _run(
            [
                "bash",
                "-c",
                f"""
            set -e
            . {CLUSTER_DIR}/common.sh
            need_packages debootstrap
            rootfs=$(mktemp -d)
            debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
            tar -C "$rootfs" -c . | {DOCKER} import - {BASE_IMAGE} >/dev/null
            rm -rf "$rootfs"
        """,
            ],
            timeout=1200,
        )
    assert _image_exists(BASE_IMAGE)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def pause_image(docker: str) -> str:
    """local/pause:bhs-1 in the Docker daemon (the cluster's pause binary as an image).

    ``up.sh`` makes it only when it first loads the image into the node's containerd,
    so a daemon pruned since then lacks it: made again here from the cached binary."""
    if not _image_exists(PAUSE_IMAGE):
        _run(
            [
                "bash",
                "-c",
                f"""
            set -e
            . {CLUSTER_DIR}/common.sh
            tmp=$(mktemp -d)
            cp "$K8S_CACHE/bin/pause" "$tmp/pause"
            tar -C "$tmp" -c pause | {DOCKER} import --change 'ENTRYPOINT ["/pause"]' - \
                {PAUSE_IMAGE} >/dev/null
            rm -rf "$tmp"
        """,
            ],
            timeout=300,
        )
    assert _image_exists(PAUSE_IMAGE)
    return PAUSE_IMAGE


def _containerd_has(image: str) -> bool:
    ref = (
        image if "/" in image.split("/")[0] or "." in image.split("/")[0] else f"docker.io/{image}"
    )
    out = subprocess.run(
        [
            "ctr",
            "--address",
            str(STATE / "containerd" / "containerd.sock"),
            "-n",
            "k8s.io",
            "images",
            "ls",
            "-q",
            f"name=={ref}",
        ],
        capture_output=True,
        text=True,
    )
    return out.returncode == 0 and ref in out.stdout.split()


@pytest.fixture(scope="session")
def load_image(kubeconfig: str, docker: str) -> Callable[[str], str]:
    def load(image: str) -> str:
        if not _containerd_has(image):
            _run([str(CLUSTER_DIR / "load-image.sh"), image], timeout=600)
        return image

    return load


TOOLS_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends git curl ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
# Debian's docker client, from the node (same Debian release, so the same libc)
COPY docker /usr/local/bin/docker
"""


@pytest.fixture(scope="session")
def tools_image(base_image: str, load_image: Callable[[str], str]) -> str:
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(TOOLS_DOCKERFILE.format(base=base_image))
        shutil.copy2(DOCKER, Path(ctx, "docker"))
        _run(
            [DOCKER, "build", "-q", "-t", "local/bhs-cluster-tools:build", ctx],
            timeout=1200,
            stdout=subprocess.DEVNULL,
        )
    # Tag by content, so that an image already in the cluster is not loaded again.
    image_id = _run(
        [DOCKER, "image", "inspect", "-f", "{{.Id}}", "local/bhs-cluster-tools:build"],
        timeout=60,
        capture_output=True,
    ).stdout.strip()
    image = f"local/bhs-cluster-tools:{image_id.split(':')[-1][:12]}"
    _run([DOCKER, "tag", "local/bhs-cluster-tools:build", image], timeout=60)
    return load_image(image)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _registry_answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _trust_plain_http(registry: str) -> None:
    """Tell the cluster's containerd that REGISTRY answers plain HTTP (read at each pull)."""
    d = STATE / "containerd" / "certs.d" / registry
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.toml").write_text(
        f'server = "http://{registry}"\n[host."http://{registry}"]\n'
        f'  capabilities = ["pull", "resolve", "push"]\n  skip_verify = true\n'
    )


@pytest.fixture(scope="session")
def registry(kubeconfig: str) -> Iterator[str]:
    """A registry on the node: 127.0.0.1:5000, reused when one answers there, else started.

    When port 5000 is taken by something else, a registry is started on a free port, which
    the cluster's containerd is then told about.
    """
    port = 5000
    if _registry_answers(port):
        yield f"127.0.0.1:{port}"
        return
    script = REPO_DIR / "scripts" / "ensure-registry.sh"
    if not _port_open("127.0.0.1", port) and script.exists():
        _run(["bash", str(script)], timeout=600, env={**os.environ, "REGISTRY_PORT": str(port)})
        yield f"127.0.0.1:{port}"
        return
    if _port_open("127.0.0.1", port):
        port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp, "config.yml")
        cfg.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        with open(Path(tmp, "registry.log"), "w") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for(lambda: _registry_answers(port), timeout=30, what="the registry")
            _trust_plain_http(f"127.0.0.1:{port}")
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def helm(kubeconfig: str) -> str:
    """Path of the pinned helm binary (helm-path.sh fetches it into the cache if needed)."""
    out = _run([str(CLUSTER_DIR / "helm-path.sh")], timeout=600, stdout=subprocess.PIPE).stdout
    return out.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


class GitServer:
    def __init__(self, base: Path, port: int, host: str):
        self.base = base
        self.port = port
        self.host = host

    def url(self, name: str) -> str:
        """URL of repository NAME for pods (the node IP) and for the host alike."""
        return f"git://{self.host}:{self.port}/{name}"

    def create_repo(self, name: str, files: dict[str, str]) -> str:
        """Create bare repository NAME with one commit holding FILES; return the commit's sha."""
        env = {**os.environ, **_GIT_IDENTITY}
        with tempfile.TemporaryDirectory() as work:
            _run(["git", "init", "-q", "-b", "main", work], timeout=60, env=env)
            for rel, content in files.items():
                Path(work, rel).parent.mkdir(parents=True, exist_ok=True)
                Path(work, rel).write_text(content)
            _run(["git", "-C", work, "add", "-A"], timeout=60, env=env)
            _run(["git", "-C", work, "commit", "-q", "-m", "test commit"], timeout=60, env=env)
            sha = _run(
                ["git", "-C", work, "rev-parse", "HEAD"], timeout=60, env=env, capture_output=True
            ).stdout.strip()
            _run(["git", "clone", "-q", "--bare", work, str(self.base / name)], timeout=60, env=env)
        return sha

    def commit(self, name: str, files: dict[str, str], branch: str = "main") -> str:
        """Add a commit with FILES on BRANCH of repository NAME; return its sha."""
        env = {**os.environ, **_GIT_IDENTITY}
        with tempfile.TemporaryDirectory() as work:
            _run(["git", "clone", "-q", str(self.base / name), work], timeout=60, env=env)
            _run(["git", "-C", work, "checkout", "-q", "-B", branch], timeout=60, env=env)
            for rel, content in files.items():
                Path(work, rel).parent.mkdir(parents=True, exist_ok=True)
                Path(work, rel).write_text(content)
            _run(["git", "-C", work, "add", "-A"], timeout=60, env=env)
            _run(["git", "-C", work, "commit", "-q", "-m", "next commit"], timeout=60, env=env)
            _run(["git", "-C", work, "push", "-q", "origin", branch], timeout=60, env=env)
            return _run(
                ["git", "-C", work, "rev-parse", "HEAD"], timeout=60, env=env, capture_output=True
            ).stdout.strip()


@pytest.fixture(scope="session")
def git_server(kubeconfig: str) -> Iterator[GitServer]:
    """git daemon on a free port, on 127.0.0.1 and on the node IP (so pods reach it)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp, "repos")
        base.mkdir()
        port = _free_port()
        with open(Path(tmp, "git-daemon.log"), "w") as log:
            proc = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    f"--base-path={base}",
                    "--export-all",
                    "--listen=127.0.0.1",
                    f"--listen={NODE_IP}",
                    f"--port={port}",
                    str(base),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(
                lambda: _port_open(NODE_IP, port) or proc.poll() is not None,
                timeout=30,
                what="git daemon",
            )
            assert proc.poll() is None, Path(tmp, "git-daemon.log").read_text()
            yield GitServer(base, port, NODE_IP)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


# ------------------------------------------------------------------------------------------
# releases: the images and the chart as operators get them (make release)
# ------------------------------------------------------------------------------------------

FIRST_VERSION, NEXT_VERSION = "0.90.0", "0.90.1"
"""The session's two releases: the tests install the first; the upgrade test goes on to the
next."""


@pytest.fixture(scope="session")
def release_registry(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of the session's registry for releases (the node pulls from it)."""
    with releases.release_registry(tmp_path_factory.mktemp("release-registry")) as host:
        yield host


@pytest.fixture(scope="session")
def release_of(
    release_registry: str, helm: str, base_image: str
) -> Iterator[Callable[[str], releases.Release]]:
    """``make release`` of this checkout at a version (once per version and session)."""
    made: dict[str, releases.Release] = {}

    def release(version: str) -> releases.Release:
        if version not in made:
            made[version] = releases.make_release(release_registry, version, helm, base_image)
        return made[version]

    yield release
    for done in made.values():
        releases.forget_local_tags(done)


@pytest.fixture(scope="session")
def release(release_of: Callable[[str], releases.Release]) -> releases.Release:
    """The session's first release."""
    return release_of(FIRST_VERSION)


@pytest.fixture(scope="session")
def builder_image(release: releases.Release, load_image: Callable[[str], str]) -> str:
    """The released builder image of build pods (images/repo2docker: repo2docker 2026.4, the
    docker CLI, buildx and builder/'s engine), also put into the node's containerd (tests
    that run it with ``imagePullPolicy: Never``)."""
    return load_image(release.builder_image)


@pytest.fixture(scope="session")
def upstream_buildkit(kubeconfig: str, docker: str) -> str:
    """``docker.io/moby/buildkit:<the chart's tag>``, the chart's default BuildKit daemon
    image, on the node: the stand-in of standins/moby-buildkit (upstream's buildkitd and
    buildctl, built from their Go module), loaded under upstream's name."""
    out = _run(
        [str(CLUSTER_DIR / "standins" / "moby-buildkit" / "ensure.sh"), "--load"],
        timeout=3600,
        stdout=subprocess.PIPE,
    ).stdout
    assert out.strip().startswith("local/moby-buildkit-standin:"), out
    return "docker.io/moby/buildkit:v0.34.2"


@pytest.fixture(scope="session")
def upstream_buildkit_rootless(kubeconfig: str, docker: str) -> str:
    """``docker.io/moby/buildkit:<the chart's tag>-rootless``, the daemon each build pod of
    ``builder.type: buildkit-rootless`` runs, on the node: the stand-in of
    standins/moby-buildkit (``Dockerfile.rootless``), loaded under upstream's name."""
    out = _run(
        [str(CLUSTER_DIR / "standins" / "moby-buildkit" / "ensure.sh"), "--rootless", "--load"],
        timeout=3600,
        stdout=subprocess.PIPE,
    ).stdout
    assert out.strip().startswith("local/moby-buildkit-standin:"), out
    return "docker.io/moby/buildkit:v0.34.2-rootless"


# ------------------------------------------------------------------------------------------
# the node's container runtime as the kubelet sees it (pre-pull's tests)
# ------------------------------------------------------------------------------------------

CRICTL_VERSION = "v1.34.0"
CRICTL = Path.home() / ".cache" / "binderhub-service" / f"crictl-{CRICTL_VERSION}" / "crictl"


@pytest.fixture(scope="session")
def crictl(kubeconfig: str) -> Callable[..., Any]:
    """``crictl`` (the kubelet's view of the node's container runtime, through CRI),
    built from the Go module proxy into the cache once (``sigs.k8s.io/cri-tools``; no
    Debian package has it). Called with its arguments, it answers their JSON output."""
    if not CRICTL.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        subprocess.run(
            [go, "install", f"sigs.k8s.io/cri-tools/cmd/crictl@{CRICTL_VERSION}"],
            env={**os.environ, "GOBIN": str(CRICTL.parent), "GOFLAGS": "-mod=mod"},
            check=True,
            timeout=1800,
        )
    endpoint = f"unix://{STATE / 'containerd' / 'containerd.sock'}"

    def run(*args: str) -> Any:
        out = subprocess.run(
            [str(CRICTL), "--runtime-endpoint", endpoint, "--image-endpoint", endpoint, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(out.stdout)

    return run


def runtime_has(crictl: Callable[..., Any], image: str) -> bool:
    """``crictl images`` lists ``image`` by one of its tags."""
    return any(image in (i.get("repoTags") or []) for i in crictl("images", "-o", "json")["images"])
