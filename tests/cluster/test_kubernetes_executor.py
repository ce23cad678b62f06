"""The kubernetes executor against the real test cluster.

Builds run as Jobs whose pods run repo2docker (the service's own image, which carries
it) against the node's Docker daemon and push to the node's registry. The service
talks to the API server as a service account bound to a Role made of exactly
``kubernetes.rbac.RULES``, never as the cluster admin.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from jobs.executors.kubernetes.rbac import RULES
from jobs.executors.kubernetes.status import build_over
from jobs.factory import make_service
from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import ConfigError, load_settings
from testkit.components import ServiceProcess, dockerfile, free_port, in_registry

from .conftest import GitServer, Helpers

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

REPO_DIR = Path(__file__).resolve().parents[2]
TOKEN = "cluster-tests-token"


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


def account_kubeconfig(
    api_client: client.ApiClient,
    kubeconfig: str,
    namespace: str,
    name: str,
    path: Path,
    rules: list[dict[str, Any]] | None,
) -> Path:
    """A kubeconfig for a new service account that has ``rules`` (or nothing) there."""
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    if rules is not None:
        # dicts, which the client takes where it types a V1Role and a V1RoleBinding
        role: Any = {"metadata": {"name": name}, "rules": rules}
        rbac.create_namespaced_role(namespace, role)
        binding: Any = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
        rbac.create_namespaced_role_binding(namespace, binding)
    token = core.create_namespaced_service_account_token(
        name,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": name, "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": name}}],
                "current-context": "test",
            }
        )
    )
    return path


@pytest.fixture
def role_kubeconfig(
    namespace: str, api_client: client.ApiClient, kubeconfig: str, tmp_path: Path
) -> Path:
    """A kubeconfig for a service account that has only ``RULES`` in the namespace."""
    return account_kubeconfig(
        api_client, kubeconfig, namespace, "binderhub-service", tmp_path / "kubeconfig", RULES
    )


@pytest.fixture
def settings_for(
    namespace: str, role_kubeconfig: Path, builder_image: str, registry: str, tmp_path: Path
) -> Callable[..., dict[str, Any]]:
    unique = uuid.uuid4().hex[:8]

    def make(state: str = "builds.sqlite", **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "executor": "kubernetes",
            "image_prefix": f"{registry}/k{unique}-",
            "state_path": str(tmp_path / state),
            "log_format": "text",
            "kubernetes": {
                "namespace": namespace,
                "kubeconfig": str(role_kubeconfig),
                "builder_image": builder_image,
                "builder_image_pull_policy": "Never",
                "ttl_seconds_after_finished": 600,
                "lease_seconds": 6,
            },
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return values

    return make


@pytest.fixture
async def services() -> Any:
    started: list[BuildService] = []

    async def start(values: dict[str, Any]) -> BuildService:
        service = make_service(load_settings(None, **values))
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.close()


@pytest.fixture
def servers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``binderhub-service serve`` processes; their logs are printed when the test fails."""
    running: list[ServiceProcess] = []

    def start(values: dict[str, Any]) -> ServiceProcess:
        port = free_port()
        values = {
            **values,
            "listen": f"127.0.0.1:{port}",
            "auth": {
                "tokens": [
                    {
                        "name": "tests",
                        "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                        "scopes": ["builds:read", "builds:write"],
                    }
                ]
            },
        }
        config = tmp_path / f"config-{len(running)}.yml"
        config.write_text(yaml.safe_dump(values))
        server = ServiceProcess(config, tmp_path / f"service-{len(running)}.log", port, token=TOKEN)
        running.append(server)
        server.start()
        return server

    yield start
    report = getattr(request.node, "rep_call", None)
    for server in running:
        server.stop()
        if report is not None and report.failed:
            print(f"===== log of {server.config.name}\n{server.log()}")


def jobs_in(batch_v1: client.BatchV1Api, namespace: str) -> list[client.V1Job]:
    return batch_v1.list_namespaced_job(
        namespace, label_selector="app.kubernetes.io/managed-by=binderhub-service"
    ).items


async def eventually(check: Callable[[], Any], within: float, what: str) -> Any:
    """``wait_for`` for async tests: the service's tasks run while it waits."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.2)


async def finished(service: BuildService, build_id: str, seconds: float = 300) -> Any:
    async with asyncio.timeout(seconds):
        async for _event in service.watch(build_id):
            pass
    return service.get(build_id)


def follow(server: ServiceProcess, build_id: str, timeout: float = 300) -> dict[str, Any]:
    with server.client() as http:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            build: dict[str, Any] = http.get(f"/api/v1/builds/{build_id}").json()
            if build["state"] not in ("queued", "running"):
                return build
            time.sleep(0.5)
    raise AssertionError(f"build {build_id} did not finish in {timeout}s")


# ------------------------------------------------------------------------------------------
# the tests
# ------------------------------------------------------------------------------------------


def test_api_build_runs_as_a_job_and_a_second_request_is_a_cache_hit(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    registry: str,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    sha = git_server.create_repo("api.git", {"Dockerfile": dockerfile("RUN echo built-in-a-pod")})
    server = servers(settings_for(allow_file_urls=False))
    with server.client() as http:
        answer = http.post("/api/v1/builds", json={"repo": git_server.url("api.git")})
        assert answer.status_code == 202, answer.text
        build = answer.json()
    assert build["sha"] == sha
    done = follow(server, build["id"])
    assert done["state"] == "built", done
    assert in_registry(f"http://{registry}", done["image"])
    (job,) = jobs_in(batch_v1, namespace)
    labels = job.metadata.labels
    assert labels["binderhub-service/build-id"] == build["id"]
    assert labels["binderhub-service/commit"] == sha
    assert job.metadata.annotations["binderhub-service/image"] == done["image"]
    with server.client() as http:
        log = http.get(f"/api/v1/builds/{build['id']}/logs").text
        again = http.post("/api/v1/builds", json={"repo": git_server.url("api.git")}).json()
    assert "built-in-a-pod" in log
    assert again["outcome"] == "cached"
    assert again["id"] is None
    assert len(jobs_in(batch_v1, namespace)) == 1  # the cache hit made no Job


async def test_two_concurrent_requests_make_one_job(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    git_server.create_repo("twice.git", {"Dockerfile": dockerfile("RUN echo twice")})
    service = await services(settings_for())
    url = git_server.url("twice.git")
    first, second = await asyncio.gather(service.request(url), service.request(url))
    assert {first.status, second.status} == {"created", "joined"}
    assert first.build is not None
    assert second.build is not None
    assert first.build.id == second.build.id
    done = await finished(service, first.build.id)
    assert done.state is BuildState.BUILT, done.error
    assert len(jobs_in(batch_v1, namespace)) == 1


class QueueWatcher:
    """Watches the namespace's Jobs and pods: the order in which Jobs were let run,
    and the most build pods that were at work (Pending or Running) at once."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.most_working = 0
        self.released: list[str] = []
        self._working: set[str] = set()
        self._stopped = False
        self._watches: list[watch.Watch] = []
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        for target in (self._jobs, self._pods):
            call = batch.list_namespaced_job if target == self._jobs else core.list_namespaced_pod
            thread = threading.Thread(
                target=self._follow, args=(call, namespace, target), daemon=True
            )
            thread.start()

    def _follow(self, call: Any, namespace: str, handle: Callable[[str, Any], None]) -> None:
        while not self._stopped:
            w = watch.Watch()
            self._watches.append(w)
            try:
                for event in w.stream(call, namespace, timeout_seconds=60):
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        handle(event["type"], event["object"])
            except Exception:  # the API server ended the watch; start it again
                time.sleep(0.2)

    def _jobs(self, kind: str, job: Any) -> None:
        repo = job.metadata.annotations["binderhub-service/repo"]
        if kind != "DELETED" and not job.spec.suspend and repo not in self.released:
            self.released.append(repo)

    def _pods(self, kind: str, pod: Any) -> None:
        # a build is at work until its builder container has exited (status.build_over:
        # its slot is free then, while the pod may still show Running)
        if kind != "DELETED" and pod.status.phase in ("Pending", "Running") and not build_over(pod):
            self._working.add(pod.metadata.name)
        else:
            self._working.discard(pod.metadata.name)
        self.most_working = max(self.most_working, len(self._working))

    def stop(self) -> None:
        self._stopped = True
        for w in self._watches:
            w.stop()


async def test_queue_in_the_cluster_releases_suspended_jobs_in_order(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
    api_client: client.ApiClient,
) -> None:
    urls = []
    for name in ("q1.git", "q2.git", "q3.git"):
        git_server.create_repo(name, {"Dockerfile": dockerfile(f"RUN echo {name} && sleep 2")})
        urls.append(git_server.url(name))
    watcher = QueueWatcher(api_client, namespace)
    try:
        service = await services(settings_for(limits={"max_concurrent_builds": 1}))
        outcomes = []
        for url in urls:
            outcomes.append(await service.request(url))
        # all three are Jobs at once; two of them wait suspended
        jobs = await eventually(
            lambda: (jobs := jobs_in(batch_v1, namespace)) and len(jobs) == 3 and jobs,
            60,
            "three Jobs",
        )
        assert sum(1 for job in jobs if job.spec.suspend) >= 2
        builds = [await finished(service, o.build.id) for o in outcomes]
    finally:
        watcher.stop()
    assert [b.state for b in builds] == [BuildState.BUILT] * 3, [b.error for b in builds]
    assert watcher.most_working == 1  # never two build pods at work at once
    # in the order they were queued (the Jobs carry canonical URLs: no .git)
    assert watcher.released == [outcome.repo for outcome in outcomes]


async def test_cancel_deletes_the_job(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
) -> None:
    git_server.create_repo("slow.git", {"Dockerfile": dockerfile("RUN sleep 120")})
    service = await services(settings_for())
    outcome = await service.request(git_server.url("slow.git"))
    assert outcome.build is not None
    await eventually(
        lambda: any(
            p.status.phase == "Running" for p in core_v1.list_namespaced_pod(namespace).items
        ),
        120,
        "the build pod to run",
    )
    await service.cancel(outcome.build.id)
    assert service.get(outcome.build.id).state is BuildState.CANCELLED
    kube.wait_for(lambda: not jobs_in(batch_v1, namespace), 60, "the Job to be deleted")


async def test_deadline_exceeded_fails_the_build(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
) -> None:
    git_server.create_repo("deadline.git", {"Dockerfile": dockerfile("RUN sleep 120")})
    service = await services(settings_for(limits={"build_timeout": 8}))
    outcome = await service.request(git_server.url("deadline.git"))
    assert outcome.build is not None
    done = await finished(service, outcome.build.id)
    assert done.state is BuildState.FAILED
    assert done.error == "build timed out after 8 seconds"


async def test_a_git_server_that_never_answers_fails_at_the_fetch_deadline(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    node_ip: str,
    batch_v1: client.BatchV1Api,
    namespace: str,
    kube: type[Helpers],
) -> None:
    # issue 20: a phase's deadline (here the fetch's) stops the build long before the
    # Job's activeDeadlineSeconds (limits.build_timeout)
    silent = socket.create_server((node_ip, 0))  # accepts (its backlog), never answers
    try:
        url = f"git://{node_ip}:{silent.getsockname()[1]}/never"
        service = await services(
            settings_for(limits={"build_timeout": 600, "phase_timeouts": {"fetch": 5}})
        )
        outcome = await service.request(url, "0123456789abcdef0123456789abcdef01234567")
        assert outcome.build is not None
        done = await finished(service, outcome.build.id)
    finally:
        silent.close()
    assert done.state is BuildState.FAILED
    assert done.error == (
        "fetching the repository did not finish within 5 seconds (limits.phase_timeouts.fetch)"
    )
    assert not done.error_remembered
    kube.wait_for(lambda: not jobs_in(batch_v1, namespace), 60, "the Job to be deleted")


async def test_failing_build_keeps_its_log_after_the_pod_is_gone(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    core_v1: client.CoreV1Api,
    namespace: str,
    kube: type[Helpers],
) -> None:
    git_server.create_repo(
        "fails.git", {"Dockerfile": dockerfile("RUN echo marker-before-failing && exit 3")}
    )
    service = await services(settings_for())
    outcome = await service.request(git_server.url("fails.git"))
    assert outcome.build is not None
    done = await finished(service, outcome.build.id)
    assert done.state is BuildState.FAILED
    # repo2docker 2026.4 through the node's Docker 20.10: its built-in BuildKit's wording
    assert done.error == (
        "a Dockerfile step failed: failed to solve: executor failed running "
        "[/bin/sh -c echo marker-before-failing && exit 3]: exit code: 3"
    ), done.error
    assert done.error_remembered  # the commit's own failure (issue #12)
    batch_v1.delete_namespaced_job(done.name, namespace, propagation_policy="Foreground")
    kube.wait_for(lambda: not core_v1.list_namespaced_pod(namespace).items, 60, "the pod to go")
    lines = [message for _phase, message in service.store.logs(done.id)]
    assert any("marker-before-failing" in line for line in lines)


async def test_a_builder_image_that_cannot_be_pulled_is_a_clear_failure(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
    kube: type[Helpers],
) -> None:
    git_server.create_repo("nopull.git", {"Dockerfile": dockerfile("RUN true")})
    values = settings_for(kubernetes={"builder_image": "local/no-such-builder:1"})
    service = await services(values)
    outcome = await service.request(git_server.url("nopull.git"))
    assert outcome.build is not None
    done = await finished(service, outcome.build.id, seconds=120)
    assert done.state is BuildState.FAILED
    assert done.error.startswith(
        "cannot pull the builder image local/no-such-builder:1: ErrImageNeverPull"
    ), done.error
    assert not done.error_remembered  # the cluster's trouble, not the commit's
    kube.wait_for(lambda: not jobs_in(batch_v1, namespace), 60, "the Job to be deleted")


def test_restart_mid_build_attaches_to_the_job_again(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    registry: str,
    kube: type[Helpers],
) -> None:
    git_server.create_repo(
        "restart.git",
        {
            "Dockerfile": dockerfile(
                # the output (reversed) differs from the step's own line, so each
                # is counted apart
                "RUN echo line-before-restart | rev",
                "RUN sleep 12",
                "RUN echo after",
            )
        },
    )
    values = settings_for()
    server = servers(values)
    with server.client() as http:
        build = http.post("/api/v1/builds", json={"repo": git_server.url("restart.git")}).json()

        def log_has_marker() -> bool:
            text = http.get(f"/api/v1/builds/{build['id']}/logs").text
            return "line-before-restart" in text

        kube.wait_for(log_has_marker, 180, "the first log line")
    server.kill()
    again = servers(values)
    done = follow(again, build["id"])
    assert done["state"] == "built", done
    assert done["attempts"] == 1  # attached, not run again
    assert in_registry(f"http://{registry}", done["image"])
    with again.client() as http:
        log = http.get(f"/api/v1/builds/{build['id']}/logs").text
    # the lines read before the restart are not read twice: the step's line and its
    # output once each (the unique label in dockerfile() makes the step really run).
    # Docker may hand a step's output over in pieces (one log line each), so the output
    # is looked for in the messages put back together.
    messages = "".join(line["message"] for line in json.loads(log)["lines"])
    # (BuildKit, through the node's Docker, prints each step's line once: "#N [i/n] RUN …")
    assert log.count("RUN echo line-before-restart") == 1, log
    assert messages.count("tratser-erofeb-enil") == 1, log


def test_two_service_processes_make_one_job(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    git_server.create_repo("replicas.git", {"Dockerfile": dockerfile("RUN echo replicas")})
    a = servers(settings_for(state="a.sqlite"))
    b = servers(settings_for(state="b.sqlite"))
    url = git_server.url("replicas.git")
    results: dict[str, dict[str, Any]] = {}

    def post(name: str, server: ServiceProcess) -> None:
        with server.client() as http:
            results[name] = http.post("/api/v1/builds", json={"repo": url}).json()

    threads = [threading.Thread(target=post, args=(n, s)) for n, s in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done_a = follow(a, results["a"]["id"])
    done_b = follow(b, results["b"]["id"])
    assert done_a["state"] == done_b["state"] == "built", (done_a, done_b)
    assert done_a["image"] == done_b["image"]
    assert len(jobs_in(batch_v1, namespace)) == 1


def test_a_job_unknown_to_the_store_is_adopted_and_reported(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    namespace: str,
    batch_v1: client.BatchV1Api,
    kube: type[Helpers],
) -> None:
    git_server.create_repo("adopt.git", {"Dockerfile": dockerfile("RUN sleep 5")})
    first = servers(settings_for(state="first.sqlite"))
    with first.client() as http:
        build = http.post("/api/v1/builds", json={"repo": git_server.url("adopt.git")}).json()
    kube.wait_for(lambda: jobs_in(batch_v1, namespace), 30, "the Job")
    first.kill()
    # a new process with an empty store (a lost volume, another replica)
    second = servers(settings_for(state="second.sqlite"))
    done = follow(second, build["id"])
    assert done["state"] == "built", done
    assert done["image"] == build["image"]


def test_the_executor_needs_no_more_than_its_role(role_kubeconfig: Path, namespace: str) -> None:
    # the service account cannot do what RULES leave out: the Role is all it has
    from kubernetes import config as kube_config

    api = kube_config.new_client_from_config(config_file=str(role_kubeconfig))
    try:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(api).list_namespaced_secret(namespace)
        assert denied.value.status == 403
        client.BatchV1Api(api).list_namespaced_job(namespace)  # allowed
    finally:
        api.close()


async def test_a_newer_push_supersedes_a_queued_job(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    # one slot, taken by a slow build; the branch's first commit waits suspended
    git_server.create_repo("blocker.git", {"Dockerfile": dockerfile("RUN sleep 15")})
    git_server.create_repo("branch.git", {"Dockerfile": dockerfile("RUN echo first")})
    service = await services(settings_for(limits={"max_concurrent_builds": 1}, ref_cache_seconds=0))
    blocker = await service.request(git_server.url("blocker.git"))
    first = await service.request(git_server.url("branch.git"), "main")
    assert blocker.build is not None
    assert first.build is not None
    await eventually(lambda: len(jobs_in(batch_v1, namespace)) == 2, 60, "two Jobs")
    second_sha = git_server.commit("branch.git", {"Dockerfile": dockerfile("RUN echo second")})
    second = await service.request(git_server.url("branch.git"), "main")
    assert second.build is not None
    assert second.sha == second_sha
    assert service.get(first.build.id).state is BuildState.SUPERSEDED
    done = await finished(service, second.build.id)
    assert done.state is BuildState.BUILT, done.error
    names = {job.metadata.name for job in jobs_in(batch_v1, namespace)}
    assert first.build.name not in names  # its Job was deleted
    assert second.build.name in names
    assert (await finished(service, blocker.build.id)).state is BuildState.BUILT


async def test_without_its_role_the_service_refuses_to_start(
    settings_for: Callable[..., dict[str, Any]],
    api_client: client.ApiClient,
    kubeconfig: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    bare = account_kubeconfig(
        api_client, kubeconfig, namespace, "nobody", tmp_path / "bare-kubeconfig", None
    )
    service = make_service(
        load_settings(None, **settings_for(kubernetes={"kubeconfig": str(bare)}))
    )
    with pytest.raises(ConfigError) as refused:
        await service.start()
    assert f"cannot list Jobs in namespace '{namespace}': 403 Forbidden" in str(refused.value)
    await service.close()


def test_a_replica_follows_the_builds_another_one_started(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    kube: type[Helpers],
) -> None:
    git_server.create_repo(
        "seen.git", {"Dockerfile": dockerfile("RUN echo seen-by-both", "RUN sleep 3")}
    )
    a = servers(settings_for(state="a.sqlite"))
    b = servers(settings_for(state="b.sqlite"))  # running before the build exists
    with a.client() as http:
        build = http.post("/api/v1/builds", json={"repo": git_server.url("seen.git")}).json()
    with b.client() as http:
        kube.wait_for(
            lambda: http.get(f"/api/v1/builds/{build['id']}").status_code == 200,
            60,
            "the other replica to record the build",
        )
    done_a, done_b = follow(a, build["id"]), follow(b, build["id"])
    assert done_a["state"] == done_b["state"] == "built", (done_a, done_b)
    with b.client() as http:
        log = http.get(f"/api/v1/builds/{build['id']}/logs").text
    assert "seen-by-both" in log
