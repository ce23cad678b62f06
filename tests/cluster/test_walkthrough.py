"""docs/walkthrough.md, end to end, in the test cluster (issues #14, #22).

A JupyterHub set up from ``docs/walkthrough/jhub-values.yaml`` and the hub snippet
``docs/hub-extra-config.py`` the way zero-to-jupyterhub documents those values (the test
hub: hub_install.py, manifests and a hub configuration of ours, JupyterHub, KubeSpawner and
configurable-http-proxy from their packages) in namespace ``jhub``, and this chart, as
released (``make release`` into the session's registry, then ``helm install oci://...``), in
``binder`` with ``docs/walkthrough/binder-values.yaml``: the files the walkthrough includes,
as they are, each followed by a small file of test-environment values and no image value
(see ``walkthrough.py``). The registry of the built images asks for credentials and answers
as Docker Hub does (token auth, 401 for a repository that does not exist yet); the node pulls
from it with the hub's image pull secret; builds run on the chart's BuildKit builder (no
Docker on the node), its daemon the chart's default ``moby/buildkit`` image.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from . import enforcement
from . import walkthrough as w
from .conftest import GitServer, Helpers, runtime_has
from .releases import Release

pytestmark = pytest.mark.cluster

# the walkthrough's registry user (docs/walkthrough/*.yaml); the password is the test's
CREDENTIALS = ("builder", secrets.token_hex(8))
REPO = "course.git"


@pytest.fixture(scope="module")
def hub_image(kubeconfig: str, base_image: str) -> str:
    """The test hub's image (hub/Dockerfile), on the node: the hub, its proxy, and the
    single-user servers' base."""
    return w.hub_image(base_image)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, node_ip: str) -> Iterator[str]:
    with w.pod_registry(tmp_path_factory.mktemp("registry"), node_ip, CREDENTIALS) as host:
        yield host


@pytest.fixture(scope="module")
def singleuser_base(hub_image: str, registry: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return w.push_singleuser_base(
        hub_image, registry, CREDENTIALS, tmp_path_factory.mktemp("docker-config")
    )


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    return {name: secrets.token_hex(32) for name in ("hub-service", "e2e", "webhook")}


@pytest.fixture(scope="module")
def hub(
    api_client: client.ApiClient,
    hub_image: str,
    registry: str,
    singleuser_base: str,
    tokens: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[w.Hub]:
    """The hub set up as the walkthrough's z2jh values say; its default image the
    single-user base."""
    h = w.install_hub(
        api_client,
        hub_image,
        singleuser_base,
        registry,
        CREDENTIALS,
        tokens,
        tmp_path_factory.mktemp("jhub"),
    )
    try:
        yield h
    finally:
        h.close()
        # two releases and a BuildKit daemon: not left running on the shared cluster
        w.remove_all(client.CoreV1Api(api_client))


@pytest.fixture(scope="module")
def service(
    hub: w.Hub,
    helm: str,
    kubeconfig: str,
    registry: str,
    singleuser_base: str,
    tokens: dict[str, str],
    git_server: GitServer,
    release: Release,
    upstream_buildkit: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """This chart, as released, installed as the walkthrough says next to the hub: no image
    value. Returns the URL of the repository it builds, whose Dockerfile starts FROM the
    single-user base."""
    git_server.create_repo(REPO, {"Dockerfile": w.course_dockerfile(singleuser_base)})
    repo_url = git_server.url(REPO)
    overrides = w.binder_test_values(registry, repo_url, CREDENTIALS[1], tokens)
    w.install_service(helm, kubeconfig, release, overrides, tmp_path_factory.mktemp("binder"))
    return repo_url


def user_pod(core_v1: client.CoreV1Api, user: str) -> client.V1Pod:
    (pod,) = core_v1.list_namespaced_pod(
        w.HUB_NS, label_selector=f"component=singleuser-server,hub.jupyter.org/username={user}"
    ).items
    return pod


def test_a_user_server_starts_from_a_prebuilt_image_with_its_home_volume(
    hub: w.Hub, core_v1: client.CoreV1Api, singleuser_base: str
) -> None:
    user = "prebuilt"
    w.start_server(hub, user, {})
    hub.create_user(user)
    # the server answers through the hub's proxy
    answer = hub.request("GET", f"/user/{user}/api")
    assert answer.status_code == 200, answer.text
    assert "version" in answer.json()
    (container,) = user_pod(core_v1, user).spec.containers
    assert container.image == singleuser_base  # pulled from the registry with credentials
    (home,) = [m for m in container.volume_mounts if m.mount_path == "/home/jovyan"]
    assert (home.name, home.sub_path) == ("home", user)
    # what the server writes in its home lands on the volume
    written = hub.request(
        "PUT",
        f"/user/{user}/api/contents/hello.txt",
        json={"type": "file", "format": "text", "content": "hello"},
    )
    assert written.status_code in (200, 201), written.text
    assert (hub.homes / user / "hello.txt").read_text() == "hello"
    w.stop_server(hub, user)


def user_pods(core_v1: client.CoreV1Api, image: str) -> list[str]:
    """The hub's user pods (any user) whose container runs ``image``."""
    pods = core_v1.list_namespaced_pod(w.HUB_NS, label_selector="component=singleuser-server")
    return [
        str(p.metadata.name) for p in pods.items if any(c.image == image for c in p.spec.containers)
    ]


def test_a_push_builds_an_image_the_hub_offers_and_a_user_starts(
    hub: w.Hub,
    service: str,
    git_server: GitServer,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    kube: type[Helpers],
    tokens: dict[str, str],
    release: Release,
    upstream_buildkit: str,
    crictl: Callable[..., Any],
) -> None:
    """Issues 14, 22 and 26: a signed push builds the image; pre-pull puts it on the node
    before any spawn; a user starts it through the hub's API and the kubelet pulls
    nothing."""
    user = "learner"
    hub.create_user(user)
    notes = f"course notes {secrets.token_hex(4)}\n"
    sha = git_server.commit(REPO, {"README.md": notes})

    # -- GitHub's signed push, through the hub's proxy, starts a build ----------------------
    kube.wait_for(
        lambda: hub.http.get("/services/binder/health").status_code == 200,
        timeout=120,
        what="the service behind the hub's proxy",
    )
    body, headers = w.signed_push(tokens["webhook"], service, sha)
    answer = hub.http.post("/services/binder/hooks/github", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    (build,) = answer.json()["builds"]

    def finished() -> dict[str, Any] | None:
        r = hub.request("GET", f"/services/binder/api/v1/builds/{build['id']}")
        assert r.status_code == 200, r.text
        state: dict[str, Any] = r.json()
        return state if state["state"] in ("built", "failed", "cancelled") else None

    done = kube.wait_for(finished, timeout=900, what=f"build {build['id']}", interval=2)
    assert done["state"] == "built", done.get("error")
    image = done["image"]
    assert image.endswith(f":{sha}")
    # the service, its BuildKit daemon and the build's pod (kept until its TTL) run the
    # release's images and upstream's, as the released chart names them
    pods = core_v1.list_namespaced_pod(w.BINDER_NS).items
    images = {c.image for pod in pods for c in pod.spec.containers}
    assert images == {release.service_image, release.builder_image, upstream_buildkit}

    # -- pre-pull (issue 26): before any spawn, the node's container runtime has it, pulled
    #    by the DaemonSet in the hub's namespace with z2jh's pull Secret (the registry asks
    #    for credentials), and the service says so
    assert not user_pods(core_v1, image)
    answer = kube.wait_for(
        lambda: w.prepulled(hub, image), timeout=300, what="the built image pre-pulled"
    )
    assert (answer["enabled"], answer["nodes"]) == (True, 1)
    assert runtime_has(crictl, image)
    (prepull,) = client.AppsV1Api(api_client).list_namespaced_daemon_set(w.HUB_NS).items
    assert [s.name for s in prepull.spec.template.spec.image_pull_secrets] == ["image-pull-secret"]
    assert not user_pods(core_v1, image)  # no spawn yet: the DaemonSet alone pulled it

    # -- the hub's profile list (the snippet's, from the service) offers it: the choice of
    #    the service's list starts the built image, which only the hub's list can name (the
    #    hub's default image is the single-user base)
    options = w.profile_options(hub, tokens["hub-service"], image)

    # -- the user starts it through the hub's API: the built image, already on the node
    #    (the kubelet's event says so; nothing is pulled), the home volume, the course
    w.start_server(hub, user, options)
    pod = user_pod(core_v1, user)
    (container,) = pod.spec.containers
    assert container.image == image
    name = str(pod.metadata.name)

    def pulled_events() -> list[str]:  # the kubelet records events asynchronously
        events = w.pod_events(core_v1, name)
        return [
            e.message or "" for e in events if e.reason == "Pulled" and image in (e.message or "")
        ]

    kube.wait_for(pulled_events, timeout=60, what="the user pod's Pulled event of the image")
    events = w.pod_events(core_v1, name)
    said = [f"{e.reason}: {e.message}" for e in events]
    pulled = [
        e.message or "" for e in events if e.reason == "Pulled" and image in (e.message or "")
    ]
    assert pulled, said
    assert all("already present on machine" in m for m in pulled), said
    # (the init container's image, the single-user base, is not pre-pulled: not asked)
    assert not [e for e in events if e.reason == "Pulling" and image in (e.message or "")], said
    assert any(m.mount_path == "/home/jovyan" and m.name == "home" for m in container.volume_mounts)
    assert (hub.homes / user / REPO.removesuffix(".git") / "README.md").read_text() == notes
    answer = hub.request("GET", f"/user/{user}/api")
    assert answer.status_code == 200, answer.text
    w.stop_server(hub, user)


PROBE = """\
import socket

# {nonce}: a new RUN step each time (BuildKit would take an earlier one from its cache)
for name, host, port in [
    ("metadata", "169.254.169.254", 80),
    ("hub-api", "hub.jhub.svc.cluster.local", 8081),
    ("kubernetes-api", "kubernetes.default.svc.cluster.local", 443),
    ("internet", "203.0.113.10", 80),
    ("registry", "{registry_host}", {registry_port}),
]:
    try:
        socket.create_connection((host, port), timeout=5).close()
        verdict = "reached"
    except OSError as error:
        verdict = f"refused ({{error}})"
    print(f"PROBE {{name}} {{verdict}}", flush=True)
"""
"""A build step trying the addresses a build must never reach and those it needs."""


def test_a_build_step_reaches_registries_and_the_internet_only(
    hub: w.Hub,
    service: str,
    git_server: GitServer,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
    registry: str,
    singleuser_base: str,
) -> None:
    """Issue 23: with the chart's NetworkPolicies (on by default) and z2jh's enforced, a
    build step, which runs in the BuildKit daemon's network, cannot reach the cloud metadata
    address (a listener on the node stands in for it), the hub's API or the Kubernetes API;
    it reaches the registry it pushes to and an address on the internet (a package index's,
    also a listener on the node). The rest of this module is the hub and the service
    reaching each other through the same policies."""
    pods = [
        (ns, str(pod.metadata.name))
        for ns in (w.HUB_NS, w.BINDER_NS)
        for pod in core_v1.list_namespaced_pod(ns).items
        if pod.status.phase == "Running"
    ]
    assert {name for _, name in pods if name.startswith("hub-")}, pods
    enforcement.wait_enforced(pods)  # the enforcer has every pod, the daemon among them
    nonce = secrets.token_hex(4)
    host, _, port = registry.rpartition(":")
    repo = f"probe-{nonce}.git"
    git_server.create_repo(
        repo,
        {
            "Dockerfile": f"FROM {singleuser_base}\nCOPY probe.py /tmp/probe.py\n"
            "RUN python3 /tmp/probe.py\n",
            "probe.py": PROBE.format(nonce=nonce, registry_host=host, registry_port=port),
        },
    )
    with enforcement.node_stand_ins(f"canary-{nonce}"):
        answer = hub.request(
            "POST",
            "/services/binder/api/v1/builds",
            json={"repo": git_server.url(repo), "ref": "main"},
        )
        assert answer.status_code == 202, answer.text
        build = answer.json()

        def finished() -> dict[str, Any] | None:
            r = hub.request("GET", f"/services/binder/api/v1/builds/{build['id']}")
            state: dict[str, Any] = r.json()
            return state if state["state"] in ("built", "failed", "cancelled") else None

        done = kube.wait_for(finished, timeout=900, what=f"build {build['id']}", interval=2)
    log = hub.request("GET", f"/services/binder/api/v1/builds/{build['id']}/logs").text
    assert done["state"] == "built", (done.get("error"), log)  # pushed: the registry reached
    # the log's lines, however the answer frames them (text, or JSON with one line each)
    verdicts: dict[str, set[str]] = {}
    for name, verdict in re.findall(r"PROBE ([a-z-]+) (reached|refused)", log):
        verdicts.setdefault(name, set()).add(verdict)
    assert verdicts == {
        "metadata": {"refused"},
        "hub-api": {"refused"},
        "kubernetes-api": {"refused"},
        "internet": {"reached"},
        "registry": {"reached"},
    }, log
