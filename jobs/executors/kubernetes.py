"""Builds as Kubernetes Jobs: one Job per image, queued in the cluster.

How it fits together:
- ``run`` creates the build's Job, always suspended. The Job's name comes from the
  image, so a second request for the same image, from this process or another
  replica, gets 409 AlreadyExists and attaches to the Job that is there.
- The queue keeper (``kube_queue``: one replica at a time, the holder of a Lease)
  lets suspended Jobs run in the order they were queued, within ``limits``, and only
  while what a build needs answers (the registry, the BuildKit daemon): until then
  they wait in the cluster, which is how this executor retries (nothing is lost if
  every replica restarts meanwhile).
- Two watches keep a cache of the Jobs and their pods in memory (``kube_watch``);
  each running build reads the cache whenever it changes and decides, with
  ``kube_status``: started, failed and why, done.
- The builder container's log is followed into the store. After a restart the
  build attaches to its Job again and skips the lines it stored before.
- The log's lines tell which phase the build is in (``jobs.phases``, from the moment
  its builder started): a phase that runs past its deadline gets the Job deleted, as
  the Job's ``activeDeadlineSeconds`` (``limits.build_timeout``) does for the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..checks import Check
from ..errors import BuildFailed, TemporaryError
from ..model import Build, LogLine
from ..phases import PhaseTracker
from ..quotas import CountedBuild
from ..settings import ConfigError, Settings
from . import kube_credentials as credentials
from . import kube_manifests as manifests
from . import kube_status as status
from .base import DurableExecutor, Note
from .docker_daemon import ping_buildkit
from .kube_queue import QueueKeeper, ReleaseGate
from .kube_watch import LogFollower, WatchCache, start_events

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
RECHECK_SECONDS = 5.0
"""A running build looks at its Job at least this often, even when nothing changed
(for the unschedulable timeout, and in case a watch event went missing)."""
LOG_DRAIN_SECONDS = 30.0
"""How long a finished build waits for the rest of its log."""
MAX_LOG_RESTARTS = 5
"""How often a build's log is read on after its stream broke off while it ran."""
REPLACE_WAIT_SECONDS = 60.0
"""How long a new build waits for the finished Job of an earlier build to go."""
CHECK_TIMEOUT_SECONDS = 2.0
"""How long a check waits for the API server or the BuildKit daemon."""


def _default_namespace(settings: Settings) -> str:
    if settings.kubernetes.namespace:
        return settings.kubernetes.namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _api_client(settings: Settings) -> client.ApiClient:
    kubeconfig = settings.kubernetes.kubeconfig
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    api: client.ApiClient = config.new_client_from_config(
        config_file=str(kubeconfig) if kubeconfig else None
    )
    return api


@dataclasses.dataclass
class _Following:
    """Where ``run`` is in following one build's Job."""

    skip: int
    """Log lines stored before, not to be delivered again."""
    follower: LogFollower | None = None
    restarts: int = 0
    started: bool = False
    seen: bool = False
    """The Job was in the cache once (so its absence means it was deleted)."""
    phases: PhaseTracker | None = None
    """The build's phases, once its builder started (the event loop's time)."""


class KubernetesExecutor(DurableExecutor):
    """Builds outlive this process and the queue is in the cluster: the coordinator
    hands every build over at once and ``run`` attaches to what exists."""

    backend = "kubernetes"

    def __init__(
        self,
        settings: Settings,
        api: client.ApiClient | None = None,
        *,
        needs: Mapping[str, Check] | None = None,
    ) -> None:
        """``needs``: what a build needs besides the BuildKit daemon (which this
        executor checks itself), by name: the queue keeper lets no build start while
        one of them does not answer (the factory passes the registry's check)."""
        self._settings = settings
        self._api = api or _api_client(settings)
        # Typed as Any: the client's models are loosely typed (every field Optional),
        # and kube_status checks what it reads from them itself.
        self._batch: Any = client.BatchV1Api(self._api)
        self._core: Any = client.CoreV1Api(self._api)
        self._discovery: Any = client.DiscoveryV1Api(self._api)
        self.namespace = _default_namespace(settings)
        self._selector = manifests.label_selector(settings)
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._cache = WatchCache(
            self._batch,
            self._core,
            self.namespace,
            self._selector,
            on_job=self._offer,
            on_queue_change=lambda: self._keeper.poke(),
        )
        gate = {**(needs or {}), **self._buildkit_check()}
        self._keeper = QueueKeeper(
            settings,
            client.CoordinationV1Api(self._api),
            self._batch,
            self.namespace,
            self.identity,
            self._cache,
            gate=ReleaseGate(gate, CHECK_TIMEOUT_SECONDS),
        )
        self._cancelled: set[str] = set()
        self._found: Callable[[Build], None] | None = None
        self._started = False
        self._start_lock = asyncio.Lock()

    # -- start and stop -----------------------------------------------------

    async def _ensure_started(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            await asyncio.to_thread(self._check_access)
            await asyncio.to_thread(self._ensure_config_map)
            await self._cache.start()
            self._keeper.start()
            self._started = True

    def _check_access(self) -> None:
        """Fail with a clear message when the API server cannot be used: refused
        (``ConfigError``: the permissions), or not answering or failing
        (``TemporaryError``: it may answer later)."""
        try:
            self._batch.list_namespaced_job(self.namespace, label_selector=self._selector, limit=1)
        except ApiException as e:
            problem = (
                f"kubernetes: cannot list Jobs in namespace {self.namespace!r}: "
                f"{e.status} {e.reason}: {status.api_message(e)}"
            )
            if status.api_unavailable(e):
                raise TemporaryError(problem) from None
            raise ConfigError(f"{problem} (see docs/kubernetes.md, Permissions)") from None
        except Exception as e:
            raise TemporaryError(f"kubernetes: cannot reach the API server: {e}") from None

    async def check(self) -> None:
        """The API server answers the cheapest call builds depend on: listing this
        executor's Jobs (one at most), within ``CHECK_TIMEOUT_SECONDS``."""
        try:
            await asyncio.to_thread(
                self._batch.list_namespaced_job,
                self.namespace,
                label_selector=self._selector,
                limit=1,
                _request_timeout=CHECK_TIMEOUT_SECONDS,
            )
        except ApiException as e:
            raise TemporaryError(
                f"the Kubernetes API server refused to list Jobs in namespace "
                f"{self.namespace!r}: {e.status} {e.reason}: {status.api_message(e)}"
            ) from None
        except Exception as e:
            cause = getattr(e, "reason", None) or e  # urllib3 wraps it in MaxRetryError
            raise TemporaryError(
                f"the Kubernetes API server at {self._api.configuration.host} is not "
                f"answering: {str(cause) or type(cause).__name__}"
            ) from None

    def checks(self) -> dict[str, Check]:
        """``kubernetes`` (the API server), and ``buildkit`` with ``builder: buildkit``."""
        return {self.backend: self.check, **self._buildkit_check()}

    def _buildkit_check(self) -> dict[str, Check]:
        """Whether the BuildKit daemon at ``buildkit_host`` is there: a Service of this
        namespace (the chart's) has a ready endpoint, that is, a daemon pod whose own
        readiness probe passes; any other address accepts connections.

        Not a connection to the Service: one to a Service without endpoints is not
        refused everywhere (on the test VMs an intercepting proxy accepted it), and the
        NetworkPolicy of the daemon admits build pods only."""
        k8s = self._settings.kubernetes
        host = k8s.buildkit_host
        if k8s.builder != "buildkit" or host is None:
            return {}
        service = status.service_at(host, self.namespace)
        if service is None:
            return {"buildkit": lambda: ping_buildkit(host, CHECK_TIMEOUT_SECONDS)}
        return {"buildkit": lambda: self._check_service(service, host)}

    async def _check_service(self, service: str, host: str) -> None:
        where = f"Service {self.namespace}/{service}"
        try:
            slices = await asyncio.to_thread(
                self._discovery.list_namespaced_endpoint_slice,
                self.namespace,
                label_selector=f"kubernetes.io/service-name={service}",
                _request_timeout=CHECK_TIMEOUT_SECONDS,
            )
        except ApiException as e:
            raise TemporaryError(
                f"the BuildKit daemon at {host}: cannot list the endpoints of its {where}: "
                f"{e.status} {e.reason}: {status.api_message(e)}"
            ) from None
        except Exception as e:
            cause = getattr(e, "reason", None) or e
            raise TemporaryError(
                f"the BuildKit daemon at {host}: the Kubernetes API server is not answering: "
                f"{str(cause) or type(cause).__name__}"
            ) from None
        if not status.has_ready_endpoint(slices.items):
            raise TemporaryError(
                f"the BuildKit daemon at {host} is not answering: its {where} has no ready endpoint"
            )

    def _ensure_config_map(self) -> None:
        body = manifests.make_config_map(self._settings, self.namespace)
        name = body["metadata"]["name"]
        try:
            current = self._core.read_namespaced_config_map(name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            with contextlib.suppress(ApiException):  # another replica made it meanwhile
                self._core.create_namespaced_config_map(self.namespace, body)
            return
        if current.data != body["data"]:
            # only the data: labels and annotations others set (Helm's) stay
            current.data = body["data"]
            self._core.replace_namespaced_config_map(name, self.namespace, current)

    async def close(self) -> None:
        self._cache.stop()
        await self._keeper.stop()
        self._api.close()

    # -- running a build ----------------------------------------------------

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        try:
            await self._ensure_started()  # TemporaryError: the API server does not answer
        except ConfigError as e:  # the API server refuses us (issue #12)
            raise BuildFailed(str(e)) from None
        changed = self._cache.follow(build.name)
        following = _Following(skip=0)
        try:
            if build.id in self._cancelled:
                raise BuildFailed("cancelled before it started", remember=False)
            if await self._create_or_attach(build, on_log):
                following.skip = resume_lines
            while True:
                changed.clear()
                if await self._look(build, following, on_log, on_start):
                    await self._drop_git_secret(build)
                    return
                await self._check_phases(build, following)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._wait_seconds(following)):
                        await changed.wait()
        except BuildFailed:  # the build is over (its Job finished, deleted or never made)
            await self._drop_git_secret(build)
            raise
        finally:
            if following.follower is not None:
                following.follower.stop()
            self._cache.unfollow(build.name)
            self._cancelled.discard(build.id)

    async def _look(
        self,
        build: Build,
        following: _Following,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
    ) -> bool:
        """Read the build's Job and pod from the cache once: True when the build is
        done, BuildFailed when it failed, False while it waits or runs."""
        name = build.name
        job = self._cache.jobs.get(name)
        if job is None:
            if following.seen or build.id in self._cancelled:
                reason = (
                    "cancelled"
                    if build.id in self._cancelled
                    else "the build's Job was deleted (cancelled by another replica?)"
                )
                raise BuildFailed(reason, remember=False)
            return False
        following.seen = True
        if not job.spec.suspend and not following.started:
            following.started = True
            on_start(None)
        pod = status.pod_of(job, self._cache.pods.get(name))
        if pod is not None and status.has_log(pod):
            self._read_log(pod, following, on_log)
        if pod is not None and status.builder_succeeded(pod):
            # The Job says Complete a few seconds later (its controller batches pod
            # updates); with backoffLimit 0 it cannot differ.
            await self._drain(following.follower)
            return True
        finished = status.job_finished(job)
        if finished is not None:
            lines = await self._drain(following.follower)
            if finished == "complete":
                return True
            pod = status.pod_of(job, self._cache.pods.get(name))
            failure = status.failure_of(job, pod, self._settings, lines, build.image, time.time())
            raise BuildFailed(failure.message, remember=failure.remember)
        problem = None
        if pod is not None:
            problem = status.pod_problem(pod, self._settings, time.time())
        if problem is None and status.start_overdue(job, pod, self._settings, time.time()):
            problem = await self._start_problem(job, pod)
        if problem is not None:
            await self._delete(name)
            raise BuildFailed(problem, remember=False)
        return False

    async def _check_phases(self, build: Build, following: _Following) -> None:
        """Stop the build (delete its Job) and raise BuildFailed, not remembered, when
        one of its phases ran past its deadline; the coordinator then asks the registry
        (a cache export cut after the push leaves the image there)."""
        if following.phases is None:
            return
        limits = self._settings.limits.phase_timeouts
        expired = following.phases.expired(limits, asyncio.get_running_loop().time())
        if expired is not None:
            await self._delete(build.name)
            raise BuildFailed(expired.message, remember=False)

    def _wait_seconds(self, following: _Following) -> float:
        """How long to wait for a change of the Job before looking again: at most
        ``RECHECK_SECONDS``, less when a phase's deadline comes sooner."""
        if following.phases is None:
            return RECHECK_SECONDS
        deadline = following.phases.deadline(self._settings.limits.phase_timeouts)
        return max(0.0, min(RECHECK_SECONDS, deadline - asyncio.get_running_loop().time()))

    async def _start_problem(self, job: Any, pod: Any | None) -> str | None:
        """Why an overdue build cannot start, from its Job's and pod's events (issue #14:
        a missing socket or Secret, a Pod Security refusal); None while there is no
        Warning. Never the commit's failure."""
        objects = [job] if pod is None else [job, pod]
        events = await asyncio.to_thread(start_events, self._core, self.namespace, objects)
        return status.start_failure(events, self._settings)

    def _read_log(self, pod: Any, following: _Following, on_log: Callable[[LogLine], None]) -> None:
        """Follow the builder's log; read on where it stopped if its stream broke off
        (an API server restart, a proxy's timeout) while the build goes on."""
        follower = following.follower
        if follower is None:
            following.follower = self._follow_log(pod, following, following.skip, on_log)
        elif (
            follower.done.is_set()
            and status.builder_running(pod)
            and following.restarts < MAX_LOG_RESTARTS
        ):
            following.restarts += 1
            following.follower = self._follow_log(pod, following, follower.seen, on_log)

    def _follow_log(
        self, pod: Any, following: _Following, skip: int, on_log: Callable[[LogLine], None]
    ) -> LogFollower:
        loop = asyncio.get_running_loop()
        if following.phases is None:  # the builder started: its fetch begins
            following.phases = PhaseTracker(start=loop.time())
        phases = following.phases
        return LogFollower(
            self._core,
            self.namespace,
            pod.metadata.name,
            skip,
            on_log,
            loop,
            observe=lambda line: phases.feed(line, loop.time()),
        )

    async def _drain(self, follower: LogFollower | None) -> list[LogLine]:
        if follower is None:
            return []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOG_DRAIN_SECONDS):
                await follower.done.wait()
        return list(follower.tail)

    async def _create_or_attach(self, build: Build, on_log: Callable[[LogLine], None]) -> bool:
        """Create the build's Job, or find the one there. True when it was there. A
        finished Job of another build is deleted first (``_replace``)."""
        body = manifests.make_build_job(build, self._settings, self.namespace)
        for attempt in range(2):
            try:
                created = await asyncio.to_thread(
                    self._batch.create_namespaced_job, self.namespace, body
                )
            except ApiException as e:
                if e.status != 409:
                    problem = (
                        f"cannot create the build's Job: {e.status} {e.reason}: "
                        f"{status.api_message(e)}"
                    )
                    if status.api_unavailable(e):  # nothing started: tried again later
                        raise TemporaryError(problem) from None
                    raise BuildFailed(problem, remember=False) from None
            except urllib3.exceptions.HTTPError as e:
                raise TemporaryError(f"kubernetes: cannot reach the API server: {e}") from None
            else:
                if created.metadata.name not in self._cache.jobs:
                    self._cache.apply("jobs", "ADDED", created)
                on_log(Note("", f"created Job {self.namespace}/{build.name}"))
                try:
                    await self._make_git_secret(build, created)
                except BuildFailed:
                    await self._delete(build.name)
                    raise
                return False
            job = await asyncio.to_thread(
                self._batch.read_namespaced_job, build.name, self.namespace
            )
            facts = manifests.build_from_job(job)
            if facts is None or facts["image"] != build.image:
                raise BuildFailed(
                    f"a Job named {build.name} exists but does not build {build.image}",
                    remember=False,
                )
            if attempt == 0 and status.finished_of_another(job, build.id):
                await self._replace(job, on_log)
                continue
            break
        if job.metadata.name not in self._cache.jobs:
            self._cache.apply("jobs", "ADDED", job)
        on_log(Note("", f"following Job {self.namespace}/{build.name}, which was there"))
        if not status.job_terminal(job):  # made by a process that stopped before its Secret?
            await self._make_git_secret(build, job)
        return True

    async def _make_git_secret(self, build: Build, job: Any) -> None:
        """Create the Secret with the git credential of ``build``'s repository, owned by
        its ``job`` (``kube_credentials``); nothing when no credential covers the
        repository or the Secret is there. Raises ``BuildFailed`` (not remembered) when
        the API server refuses it."""
        credential = credentials.git_credential(build, self._settings)
        if credential is None:
            return
        body = credentials.make_git_secret(
            build, credential, self.namespace, job.metadata.uid, dict(job.metadata.labels or {})
        )
        try:
            await asyncio.to_thread(self._core.create_namespaced_secret, self.namespace, body)
        except ApiException as e:
            if e.status == 409:
                return
            raise BuildFailed(
                f"cannot create the Secret with the build's git credential: {e.status} "
                f"{e.reason}: {status.api_message(e)}",
                remember=False,
            ) from None
        except urllib3.exceptions.HTTPError as e:
            raise BuildFailed(f"kubernetes: cannot reach the API server: {e}") from None

    async def _drop_git_secret(self, build: Build) -> None:
        """Delete ``build``'s git credential Secret, once the build is over (best effort:
        otherwise it goes with its Job)."""
        if credentials.git_credential(build, self._settings) is None:
            return
        with contextlib.suppress(ApiException, urllib3.exceptions.HTTPError):
            await asyncio.to_thread(
                self._core.delete_namespaced_secret,
                credentials.git_secret_name(build),
                self.namespace,
            )

    async def _replace(self, job: Any, on_log: Callable[[LogLine], None]) -> None:
        """Delete the finished Job of an earlier build and wait, at most
        ``REPLACE_WAIT_SECONDS``, until the watch saw it go, so that neither the
        cache nor the name still holds it when the new Job is made."""
        name, uid = job.metadata.name, job.metadata.uid
        on_log(Note("", f"deleting Job {self.namespace}/{name}, finished by an earlier build"))
        await self._delete(name)
        changed = self._cache.follow(name)  # run's own: not unfollowed here
        try:
            async with asyncio.timeout(REPLACE_WAIT_SECONDS):
                while (held := self._cache.jobs.get(name)) is not None and held.metadata.uid == uid:
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            raise BuildFailed(
                f"the finished Job {self.namespace}/{name} of an earlier build was deleted "
                f"but is still there after {REPLACE_WAIT_SECONDS:.0f} s (a finalizer?)",
                remember=False,
            ) from None

    async def _delete(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(
                self._batch.delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",
            )

    async def cancel(self, build: Build) -> None:
        self._cancelled.add(build.id)
        await self._ensure_started()
        await self._delete(build.name)
        self._cache.notify(build.name)

    # -- the durable executor's part ----------------------------------------

    async def adopt(self, found: Callable[[Build], None]) -> None:
        """Offers the build of each Job of this instance (its label selector) that no
        ``run`` of this process follows."""
        await self._ensure_started()
        self._found = found
        for job in sorted(self._cache.jobs.values(), key=status.queued_at):
            self._offer(job)

    def counted_builds(self) -> list[CountedBuild]:
        """The requested builds of the Jobs in the watch cache, which every replica
        sees alike. A deleted Job (a cancelled or superseded build) is not among them."""
        counted = (status.counted_build_of(job) for job in self._cache.jobs.values())
        return [build for build in counted if build is not None]

    def _offer(self, job: Any) -> None:
        if self._found is None or self._cache.followed(job.metadata.name):
            return  # nobody asked, or a build of this process follows the Job
        build = status.build_of_job(job)
        if build is not None:
            self._found(build)
