"""Builds as Kubernetes Jobs: one Job per image, queued in the cluster.

How it fits together:
- ``run`` creates the build's Job, always suspended. The Job's name comes from the
  image, so a second request for the same image, from this process or another
  replica, gets 409 AlreadyExists and attaches to the Job that is there.
- The queue keeper (one replica at a time, the holder of a Lease) lets suspended
  Jobs run in the order they were queued, within ``limits``. The queue is the set of
  suspended Jobs: it survives restarts and every replica sees the same one.
- Two watches (Jobs and their pods, by label, resumed from their resourceVersion
  and listed again when it expires) keep a cache in memory; each running build
  reads the cache whenever it changes and decides: started, failed and why, done.
- The builder container's log is followed into the store. After a restart the
  build attaches to its Job again and skips the lines it stored before.

The official ``kubernetes`` client is synchronous; its calls run in threads and
watch events are handed to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from ..errors import BuildFailed, TemporaryError
from ..failures import TAIL_LINES, Failure, classify_failure
from ..log_lines import LineSplitter, RawLine, log_line_from_raw
from ..model import Build, BuildState, LogLine
from ..quotas import CountedBuild
from ..settings import ConfigError, Settings
from . import kube_manifests as manifests

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WATCH_SECONDS = 240
"""Each watch request ends after this long and is resumed from its resourceVersion."""
RECHECK_SECONDS = 5.0
"""A running build looks at its Job at least this often, even when nothing changed
(for the unschedulable timeout, and in case a watch event went missing)."""
LOG_DRAIN_SECONDS = 30.0
MAX_LOG_RESTARTS = 5
"""How often a build's log is read on after its stream broke off while it ran."""
"""How long a finished build waits for the rest of its log."""
CHECK_TIMEOUT_SECONDS = 2.0
"""How long readiness waits for the API server."""
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


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


def _condition(job: Any, *types: str) -> Any:
    for condition in (job.status.conditions or []) if job.status else []:
        if condition.type in types and condition.status == "True":
            return condition
    return None


def job_finished(job: Any) -> str | None:
    """``complete``, ``failed`` or None (still queued or running)."""
    if _condition(job, "Complete", "SuccessCriteriaMet"):
        return "complete"
    if _condition(job, "Failed", "FailureTarget"):
        return "failed"
    return None


def job_terminal(job: Any) -> bool:
    """The Job is done (Complete or Failed). ``job_finished`` answers earlier
    (SuccessCriteriaMet, FailureTarget: the outcome is known, a pod may still be
    terminating). The queue counts a Job as running until it is terminal or its pod
    has ended (Succeeded or Failed: nothing of the build runs any more)."""
    return _condition(job, "Complete", "Failed") is not None


def _queued_at(job: Any) -> tuple[float, str]:
    annotations = job.metadata.annotations or {}
    try:
        when = float(annotations.get(manifests.ANNOTATION + "queued-at", "inf"))
    except ValueError:
        when = float("inf")
    return when, job.metadata.name


def _builder_status(pod: Any) -> Any:
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.name == manifests.CONTAINER:
            return status
    return None


def _builder_running(pod: Any) -> bool:
    builder = _builder_status(pod)
    return bool(builder and builder.state and builder.state.running)


def _builder_succeeded(pod: Any) -> bool:
    builder = _builder_status(pod)
    terminated = builder.state.terminated if builder and builder.state else None
    return terminated is not None and terminated.exit_code == 0


def pod_problem(pod: Any, settings: Settings, now: float) -> str | None:
    """Why a build pod will never finish its build, if it is clear already."""
    status = pod.status
    if status is None:
        return None
    if status.reason == "Evicted":
        return f"the build pod was evicted: {status.message or 'no reason given'}"
    builder = _builder_status(pod)
    waiting = builder.state.waiting if builder and builder.state else None
    if waiting is not None and waiting.reason in PULL_FAILURES:
        return (
            f"cannot pull the builder image {settings.kubernetes.builder_image}: "
            f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
        )
    if waiting is not None and waiting.reason in CONFIG_FAILURES:
        return f"cannot start the builder: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
    for condition in status.conditions or []:
        if (
            condition.type == "PodScheduled"
            and condition.status == "False"
            and condition.reason == "Unschedulable"
        ):
            since = condition.last_transition_time
            waited = now - since.timestamp() if since else 0.0
            if waited >= settings.kubernetes.unschedulable_timeout:
                return (
                    f"the build pod could not be scheduled for {waited:.0f} seconds: "
                    f"{condition.message or 'no node fits'}"
                )
    return None


def failure_of(
    job: Any, pod: Any | None, settings: Settings, lines: Sequence[LogLine], image: str
) -> Failure:
    """What a failed Job's end means: a clear message from its condition, its pod's end
    and repo2docker's last ``lines``, and whether it is the commit's own failure.

    Only repo2docker's exit can be the commit's (``classify_failure`` decides). The
    deadline and the OOM killer are not positively the commit's (a slow registry, a
    busy node) and, like pod troubles (pulls, scheduling, eviction), not remembered.
    """
    condition = _condition(job, "Failed", "FailureTarget")
    if condition is not None and condition.reason == "DeadlineExceeded":
        return Failure(f"build timed out after {settings.limits.build_timeout:g} seconds")
    builder = _builder_status(pod) if pod is not None else None
    terminated = builder.state.terminated if builder and builder.state else None
    if terminated is None and builder is not None and builder.last_state:
        terminated = builder.last_state.terminated
    if terminated is not None:
        if terminated.reason == "OOMKilled":
            limit = (settings.kubernetes.resources.get("limits") or {}).get("memory")
            where = f" (memory limit {limit})" if limit else ""
            return Failure(f"the build ran out of memory{where} and was killed")
        code = terminated.exit_code or 1
        # a container killed by signal N ends with 128 + N
        return classify_failure(128 - code if code > 128 else code, lines, image)
    if pod is not None:
        problem = pod_problem(pod, settings, time.time())
        if problem:
            return Failure(problem)
    detail = condition.message if condition is not None and condition.message else "no reason"
    return Failure(f"the build's Job failed: {detail}")


class _LogFollower:
    """Follows the builder container's log in a thread; lines go to the event loop."""

    def __init__(
        self,
        core: Any,
        namespace: str,
        pod: str,
        skip: int,
        deliver: Callable[[LogLine], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.tail: deque[LogLine] = deque(maxlen=TAIL_LINES)
        """The last lines read, for ``classify_failure``."""
        self.seen = skip
        """Lines read so far, counting those skipped: where a new follower resumes."""
        self._core, self._namespace, self._pod = core, namespace, pod
        self._skip, self._deliver, self._loop = skip, deliver, loop
        self._stop = threading.Event()
        self._response: Any = None
        self.done = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{pod}", daemon=True)
        self._thread.start()

    def _lines(self) -> Iterator[RawLine]:
        response = self._core.read_namespaced_pod_log(
            self._pod,
            self._namespace,
            container=manifests.CONTAINER,
            follow=True,
            _preload_content=False,
        )
        self._response = response
        splitter = LineSplitter()  # lines of any length, cut (issue #12)
        try:
            for chunk in response.stream(64 * 1024, decode_content=True):
                yield from splitter.feed(chunk)
            # An unterminated last piece is dropped: it is what a stream that broke off
            # mid-line leaves, and counting it would make the next reader skip the whole
            # line. repo2docker ends every line it writes.
        finally:
            response.release_conn()

    def _run(self) -> None:
        try:
            # The pod's log from the start; lines stored before (by an earlier
            # attempt to follow it) are skipped by their count.
            seen = 0
            for raw in self._lines():
                if self._stop.is_set():
                    return
                line = log_line_from_raw(raw)
                if line is None:
                    continue
                seen += 1
                self.tail.append(line)
                if seen <= self._skip:
                    continue
                self.seen = seen
                self._loop.call_soon_threadsafe(self._deliver, line)
        except Exception as e:  # the log is a convenience; the Job's status is the truth
            if not self._stop.is_set():
                log.warning("log of build pod %s broke off: %s", self._pod, e)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(self.done.set)

    def stop(self) -> None:
        self._stop.set()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()


class KubernetesExecutor:
    durable = True
    """Builds outlive this process and the queue is in the cluster: the coordinator
    hands every build over at once and ``run`` attaches to what exists."""
    backend = "kubernetes"

    def __init__(self, settings: Settings, api: client.ApiClient | None = None) -> None:
        self._settings = settings
        self._api = api or _api_client(settings)
        # Typed as Any: the client's models are loosely typed (every field Optional),
        # and this module checks what it reads from them itself.
        self._batch: Any = client.BatchV1Api(self._api)
        self._core: Any = client.CoreV1Api(self._api)
        self._coordination: Any = client.CoordinationV1Api(self._api)
        self.namespace = _default_namespace(settings)
        self._selector = manifests.label_selector(settings)
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._jobs: dict[str, Any] = {}
        self._pods: dict[str, Any] = {}  # job name -> its newest pod
        self._synced = {"jobs": asyncio.Event(), "pods": asyncio.Event()}
        self._changed: dict[str, asyncio.Event] = {}
        self._cancelled: set[str] = set()
        self._stopping = threading.Event()
        self._watches: set[watch.Watch] = set()
        self._threads: list[threading.Thread] = []
        self._keeper: asyncio.Task[None] | None = None
        self._keeper_poke = asyncio.Event()
        self._leader = False
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
            loop = asyncio.get_running_loop()
            for kind in ("jobs", "pods"):
                thread = threading.Thread(
                    target=self._watch_loop, args=(kind, loop), name=f"watch-{kind}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            for event in self._synced.values():
                await event.wait()
            self._keeper = asyncio.create_task(self._keep_queue(), name="queue-keeper")
            self._started = True

    def _check_access(self) -> None:
        """Fail at start-up, with a clear message, when the API server cannot be used."""
        try:
            self._batch.list_namespaced_job(self.namespace, label_selector=self._selector, limit=1)
        except ApiException as e:
            raise ConfigError(
                f"kubernetes: cannot list Jobs in namespace {self.namespace!r}: "
                f"{e.status} {e.reason}: {_api_message(e)} (see docs/kubernetes.md, "
                "Permissions)"
            ) from None
        except Exception as e:
            raise ConfigError(f"kubernetes: cannot reach the API server: {e}") from None

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
                f"{self.namespace!r}: {e.status} {e.reason}: {_api_message(e)}"
            ) from None
        except Exception as e:
            cause = getattr(e, "reason", None) or e  # urllib3 wraps it in MaxRetryError
            raise TemporaryError(
                f"the Kubernetes API server at {self._api.configuration.host} is not "
                f"answering: {str(cause) or type(cause).__name__}"
            ) from None

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
        self._stopping.set()
        for w in list(self._watches):
            w.stop()
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._leader:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._release_lease)
        self._api.close()

    # -- the watches --------------------------------------------------------

    def _watch_loop(self, kind: str, loop: asyncio.AbstractEventLoop) -> None:
        list_call = (
            self._batch.list_namespaced_job if kind == "jobs" else self._core.list_namespaced_pod
        )
        while not self._stopping.is_set():
            try:
                listed = list_call(self.namespace, label_selector=self._selector)
                version = listed.metadata.resource_version
                loop.call_soon_threadsafe(self._replace_all, kind, listed.items)
                while not self._stopping.is_set():
                    w = watch.Watch()
                    self._watches.add(w)
                    try:
                        for event in w.stream(
                            list_call,
                            self.namespace,
                            label_selector=self._selector,
                            resource_version=version,
                            allow_watch_bookmarks=True,
                            timeout_seconds=WATCH_SECONDS,
                        ):
                            raw = event.get("raw_object") or {}
                            version = (raw.get("metadata") or {}).get("resourceVersion", version)
                            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                                loop.call_soon_threadsafe(
                                    self._apply, kind, event["type"], event["object"]
                                )
                    finally:
                        self._watches.discard(w)
            except ApiException as e:
                if e.status != 410:  # 410 Gone: resourceVersion expired; list again
                    log.warning("watch of %s failed: %s %s; again in 1 s", kind, e.status, e.reason)
                    self._stopping.wait(1.0)
            except Exception as e:
                if self._stopping.is_set():
                    return
                log.warning("watch of %s broke off: %r; again in 1 s", kind, e)
                self._stopping.wait(1.0)

    @staticmethod
    def _job_of(pod: Any) -> str | None:
        labels = pod.metadata.labels or {}
        return labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")

    def _replace_all(self, kind: str, items: list[Any]) -> None:
        if kind == "jobs":
            gone = set(self._jobs) - {job.metadata.name for job in items}
            self._jobs = {job.metadata.name: job for job in items}
            for name in gone:
                self._notify(name)
            for name, job in self._jobs.items():
                self._notify(name)
                self._offer(job)
        else:
            self._pods = {}
            for pod in items:
                self._apply("pods", "ADDED", pod)
        self._synced[kind].set()
        self._keeper_poke.set()

    def _apply(self, kind: str, event_type: str, obj: Any) -> None:
        if kind == "jobs":
            name = obj.metadata.name
            if event_type == "DELETED":
                self._jobs.pop(name, None)
            else:
                self._jobs[name] = obj
                if event_type == "ADDED":
                    self._offer(obj)
            self._keeper_poke.set()
        else:
            name = self._job_of(obj) or ""
            current = self._pods.get(name)
            if event_type == "DELETED":
                if current is not None and current.metadata.uid == obj.metadata.uid:
                    del self._pods[name]
            elif current is None or (
                current.metadata.creation_timestamp <= obj.metadata.creation_timestamp
            ):
                self._pods[name] = obj
            if obj.status is not None and obj.status.phase in ("Succeeded", "Failed"):
                self._keeper_poke.set()  # a slot is free
        self._notify(name)

    def _notify(self, name: str) -> None:
        event = self._changed.get(name)
        if event is not None:
            event.set()

    # -- the queue keeper ---------------------------------------------------

    def _lease_name(self) -> str:
        return manifests.lease_name(self._settings)

    def _hold_lease(self) -> bool:
        """Take or renew the queue keeper's Lease; True when this process holds it."""
        seconds = self._settings.kubernetes.lease_seconds
        now = dt.datetime.now(dt.UTC)
        name = self._lease_name()
        try:
            lease = self._coordination.read_namespaced_lease(name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=name, namespace=self.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=max(1, round(seconds)),
                    acquire_time=now,
                    renew_time=now,
                ),
            )
            try:
                self._coordination.create_namespaced_lease(self.namespace, body)
            except ApiException as e2:
                if e2.status == 409:
                    return False
                raise
            return True
        if lease.spec is None:  # made empty (by the Helm chart, for helm uninstall)
            lease.spec = client.V1LeaseSpec()
        spec = lease.spec
        renewed = spec.renew_time or spec.acquire_time
        expired = (
            renewed is None
            or (now - renewed).total_seconds() > (spec.lease_duration_seconds or seconds)
            or not spec.holder_identity
        )
        if spec.holder_identity != self.identity and not expired:
            return False
        if spec.holder_identity != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = max(1, round(seconds))
        spec.renew_time = now
        try:
            self._coordination.replace_namespaced_lease(name, self.namespace, lease)
        except ApiException as e:
            if e.status == 409:  # someone else renewed or took it first
                return False
            raise
        return True

    def _release_lease(self) -> None:
        lease = self._coordination.read_namespaced_lease(self._lease_name(), self.namespace)
        if lease.spec.holder_identity == self.identity:
            lease.spec.holder_identity = None
            lease.spec.renew_time = None
            self._coordination.replace_namespaced_lease(self._lease_name(), self.namespace, lease)

    async def _keep_queue(self) -> None:
        renew_every = self._settings.kubernetes.lease_seconds / 3
        renewed_at = 0.0
        while True:
            try:
                if time.monotonic() - renewed_at >= renew_every or not self._leader:
                    self._leader = await asyncio.to_thread(self._hold_lease)
                    renewed_at = time.monotonic()
                if self._leader:
                    await self._release_queued()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._leader = False
                log.warning("queue keeper: %r", e)
            self._keeper_poke.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(renew_every):
                    await self._keeper_poke.wait()

    async def _release_queued(self) -> None:
        """Let suspended Jobs run, oldest first, within the concurrency limits."""
        limits = self._settings.limits
        active = [job for job in self._jobs.values() if not job_terminal(job)]
        running: dict[str, int] = {}
        for job in active:
            pod = self._pods.get(job.metadata.name)
            if pod is not None and pod.status and pod.status.phase in ("Succeeded", "Failed"):
                continue  # its build is over; the Job controller says so a little later
            if not job.spec.suspend:
                repo = (job.metadata.annotations or {}).get(manifests.ANNOTATION + "repo", "")
                running[repo] = running.get(repo, 0) + 1
        total = sum(running.values())
        waiting = sorted((job for job in active if job.spec.suspend), key=_queued_at)
        for job in waiting:
            if total >= limits.max_concurrent_builds:
                return
            repo = (job.metadata.annotations or {}).get(manifests.ANNOTATION + "repo", "")
            if running.get(repo, 0) >= limits.max_concurrent_builds_per_repo:
                continue
            try:
                updated = await asyncio.to_thread(
                    self._batch.patch_namespaced_job,
                    job.metadata.name,
                    self.namespace,
                    {"spec": {"suspend": False}},
                )
            except ApiException as e:
                if e.status == 404:  # cancelled meanwhile
                    continue
                raise
            self._apply("jobs", "MODIFIED", updated)
            running[repo] = running.get(repo, 0) + 1
            total += 1

    # -- the executor interface ---------------------------------------------

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        try:
            await self._ensure_started()
        except ConfigError as e:  # the API server cannot be reached or used (issue #12)
            raise BuildFailed(str(e)) from None
        name = build.name
        changed = self._changed.setdefault(name, asyncio.Event())
        follower: _LogFollower | None = None
        try:
            if build.id in self._cancelled:
                raise BuildFailed("cancelled before it started", remember=False)
            attached = await self._create_or_attach(build, on_log)
            skip = resume_lines if attached else 0
            restarts = 0
            started = False
            seen = False
            while True:
                changed.clear()
                job = self._jobs.get(name)
                if job is None:
                    if seen or build.id in self._cancelled:
                        reason = (
                            "cancelled"
                            if build.id in self._cancelled
                            else "the build's Job was deleted (cancelled by another replica?)"
                        )
                        raise BuildFailed(reason, remember=False)
                else:
                    seen = True
                    if not job.spec.suspend and not started:
                        started = True
                        on_start(None)
                    pod = self._pods.get(name)
                    if pod is not None and self._has_log(pod):
                        if follower is None:
                            follower = self._follow_log(pod, skip, on_log)
                        elif (
                            follower.done.is_set()
                            and _builder_running(pod)
                            and restarts < MAX_LOG_RESTARTS
                        ):
                            # the stream broke off (an API server restart, a proxy's
                            # timeout) while the build goes on: read on where it stopped
                            restarts += 1
                            follower = self._follow_log(pod, follower.seen, on_log)
                    if pod is not None and _builder_succeeded(pod):
                        # The Job says Complete a few seconds later (its controller
                        # batches pod updates); with backoffLimit 0 it cannot differ.
                        await self._drain(follower)
                        return
                    finished = job_finished(job)
                    if finished is not None:
                        lines = await self._drain(follower)
                        if finished == "complete":
                            return
                        pod = self._pods.get(name)
                        failure = failure_of(job, pod, self._settings, lines, build.image)
                        raise BuildFailed(failure.message, remember=failure.remember)
                    if pod is not None:
                        problem = pod_problem(pod, self._settings, time.time())
                        if problem is not None:
                            await self._delete(name)
                            raise BuildFailed(problem, remember=False)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK_SECONDS):
                        await changed.wait()
        finally:
            if follower is not None:
                follower.stop()
            self._changed.pop(name, None)
            self._cancelled.discard(build.id)

    def _follow_log(self, pod: Any, skip: int, on_log: Callable[[LogLine], None]) -> _LogFollower:
        return _LogFollower(
            self._core, self.namespace, pod.metadata.name, skip, on_log, asyncio.get_running_loop()
        )

    @staticmethod
    def _has_log(pod: Any) -> bool:
        builder = _builder_status(pod)
        return bool(
            builder and builder.state and (builder.state.running or builder.state.terminated)
        )

    async def _drain(self, follower: _LogFollower | None) -> list[LogLine]:
        if follower is None:
            return []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOG_DRAIN_SECONDS):
                await follower.done.wait()
        return list(follower.tail)

    async def _create_or_attach(self, build: Build, on_log: Callable[[LogLine], None]) -> bool:
        """Create the build's Job, or find the one there. True when it was there."""
        body = manifests.make_build_job(build, self._settings, self.namespace)
        try:
            created = await asyncio.to_thread(
                self._batch.create_namespaced_job, self.namespace, body
            )
        except ApiException as e:
            if e.status != 409:
                raise BuildFailed(
                    f"cannot create the build's Job: {e.status} {e.reason}: {_api_message(e)}",
                    remember=False,
                ) from None
        except urllib3.exceptions.HTTPError as e:
            raise BuildFailed(f"kubernetes: cannot reach the API server: {e}") from None
        else:
            if created.metadata.name not in self._jobs:
                self._apply("jobs", "ADDED", created)
            on_log(LogLine("", f"created Job {self.namespace}/{build.name}"))
            return False
        job = await asyncio.to_thread(self._batch.read_namespaced_job, build.name, self.namespace)
        facts = manifests.build_from_job(job)
        if facts is None or facts["image"] != build.image:
            raise BuildFailed(
                f"a Job named {build.name} exists but does not build {build.image}",
                remember=False,
            )
        if job.metadata.name not in self._jobs:
            self._apply("jobs", "ADDED", job)
        on_log(LogLine("", f"following Job {self.namespace}/{build.name}, which was there"))
        return True

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
        self._notify(build.name)

    async def recover(self, build: Build) -> bool:
        # Nothing of a build runs in this process: ``run`` attaches to its Job.
        return False

    async def adopt(self, found: Callable[[Build], None]) -> None:
        """Call ``found`` with the build of every Job of this instance that this process
        does not follow: each one there now (oldest first), then each new one as it
        appears. Another replica's builds, and those queued before a store was lost,
        are thereby followed and reported by this process too."""
        await self._ensure_started()
        self._found = found
        for job in sorted(self._jobs.values(), key=_queued_at):
            self._offer(job)

    def counted_builds(self) -> list[CountedBuild]:
        """For quotas: the builds of the Jobs in the cache, which every replica sees
        alike. A deleted Job (a cancelled or superseded build) is not among them."""
        found = []
        for job in self._jobs.values():
            facts = manifests.build_from_job(job)
            if facts is None or "requester" not in facts:
                continue
            with contextlib.suppress(ValueError):
                found.append(
                    CountedBuild(
                        facts["build-id"],
                        facts["requester"],
                        facts["repo"],
                        float(facts["queued-at"]),
                        not job_terminal(job),
                    )
                )
        return found

    def _offer(self, job: Any) -> None:
        if self._found is None or job.metadata.name in self._changed:
            return  # nobody asked, or a build of this process follows the Job
        build = build_of_job(job)
        if build is not None:
            self._found(build)


def build_of_job(job: Any) -> Build | None:
    """The build a Job of this service runs, as its annotations tell it."""
    facts = manifests.build_from_job(job)
    if facts is None:
        return None
    finished = job_finished(job)
    state = BuildState.QUEUED if job.spec.suspend and finished is None else BuildState.RUNNING
    try:
        created_at = float(facts["queued-at"])
    except ValueError:
        return None
    return Build(
        id=facts["build-id"],
        repo=facts["repo"],
        ref=facts["ref"],
        ref_kind=facts["ref-kind"],
        sha=facts["commit"],
        image=facts["image"],
        name=job.metadata.name,
        state=state,
        trigger=facts["trigger"],
        created_at=created_at,
        supersedable=False,
        requester=facts.get("requester"),
    )


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message", ""))
    except ValueError:
        return str(e.body or "")[:200]
