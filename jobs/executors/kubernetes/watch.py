"""What the Kubernetes executor knows of the cluster, kept current: a watch cache of
the build Jobs and their pods, and a follower for one builder container's log.

The official ``kubernetes`` client is synchronous: the watches and the log follower
run in threads and hand what they read to the event loop, where the cache is
changed and read (so it needs no lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from ...model import LogLine
from ...repo2docker.failures import TAIL_LINES
from ...repo2docker.log_lines import LineSplitter, RawLine, log_line_from_raw
from .pod import CONTAINER
from .status import build_over, job_of

log = logging.getLogger(__name__)

WATCH_SECONDS = 60
"""Each watch request ends after this long and is resumed from its resourceVersion; with
the client's read timeout 15 s beyond it, a watch whose connection went silent is noticed
within a build pod's start timeout, not after it."""
LIST_TIMEOUT_SECONDS = 30.0
"""How long a list (or a watch's connection) may take before it is tried again."""
EVENTS_TIMEOUT_SECONDS = 10.0
"""How long listing a build's events may take (a build that cannot start is looked at
again a few seconds later)."""
_new_watch: Callable[[], Any] = watch.Watch  # the client's watch module is untyped


class WatchCache:
    """The build Jobs of one label selector in one namespace (``jobs``, by name) and
    the newest pod of each (``pods``, by Job name), kept by two watches that resume
    from their resourceVersion and list again when it expired (410 Gone).

    ``on_job`` is called with each Job listed and each Job added (the executor offers
    the builds nobody follows for adoption); ``on_queue_change`` whenever a queue slot
    may have been taken or freed. Both run on the event loop and must not block.
    A name ``follow``\\ed gets an event set whenever its Job or pod changes.
    """

    def __init__(
        self,
        batch: Any,
        core: Any,
        namespace: str,
        selector: str,
        *,
        on_job: Callable[[Any], None],
        on_queue_change: Callable[[], None],
    ) -> None:
        self.jobs: dict[str, Any] = {}
        self.pods: dict[str, Any] = {}  # job name -> its newest pod
        self._batch, self._core = batch, core
        self._namespace, self._selector = namespace, selector
        self._on_job, self._on_queue_change = on_job, on_queue_change
        self._synced = {"jobs": asyncio.Event(), "pods": asyncio.Event()}
        self._changed: dict[str, asyncio.Event] = {}
        self._stopping = threading.Event()
        self._watches: set[Any] = set()

    async def start(self) -> None:
        """Start both watches; return once each has listed what is there."""
        loop = asyncio.get_running_loop()
        for kind in ("jobs", "pods"):
            threading.Thread(
                target=self._watch_loop, args=(kind, loop), name=f"watch-{kind}", daemon=True
            ).start()
        for event in self._synced.values():
            await event.wait()

    def stop(self) -> None:
        """End the watches (their threads end within a moment)."""
        self._stopping.set()
        for w in list(self._watches):
            w.stop()

    # -- who follows which Job ------------------------------------------------

    def follow(self, name: str) -> asyncio.Event:
        """The event set whenever Job ``name`` or its pod changes (until ``unfollow``)."""
        return self._changed.setdefault(name, asyncio.Event())

    def unfollow(self, name: str) -> None:
        self._changed.pop(name, None)

    def followed(self, name: str) -> bool:
        """A build of this process follows Job ``name``."""
        return name in self._changed

    def notify(self, name: str) -> None:
        event = self._changed.get(name)
        if event is not None:
            event.set()

    # -- changes (on the event loop) ------------------------------------------

    def replace_all(self, kind: str, items: list[Any]) -> None:
        """What a list of ``kind`` (``jobs`` or ``pods``) found replaces the cache's."""
        if kind == "jobs":
            gone = set(self.jobs) - {job.metadata.name for job in items}
            self.jobs = {job.metadata.name: job for job in items}
            for name in gone:
                self.notify(name)
            for name, job in self.jobs.items():
                self.notify(name)
                self._on_job(job)
        else:
            self.pods = {}
            for pod in items:
                self.apply("pods", "ADDED", pod)
        self._synced[kind].set()
        self._on_queue_change()

    def apply(self, kind: str, event_type: str, obj: Any) -> None:
        """One watch event (``ADDED``, ``MODIFIED``, ``DELETED``) of a Job or pod. Of a
        Job's pods the newest is kept; a deleted pod is dropped only if it is that one."""
        if kind == "jobs":
            name = obj.metadata.name
            if event_type == "DELETED":
                self.jobs.pop(name, None)
            else:
                self.jobs[name] = obj
                if event_type == "ADDED":
                    self._on_job(obj)
            self._on_queue_change()
        else:
            name = job_of(obj) or ""
            current = self.pods.get(name)
            if event_type == "DELETED":
                if current is not None and current.metadata.uid == obj.metadata.uid:
                    del self.pods[name]
            elif current is None or (
                current.metadata.creation_timestamp <= obj.metadata.creation_timestamp
            ):
                self.pods[name] = obj
            if build_over(obj):
                self._on_queue_change()  # a slot is free
        self.notify(name)

    def apply_released(self, job: Any) -> None:
        """The API server's answer to this process letting ``job`` run (the queue
        keeper's patch of ``spec.suspend``), so that the Job counts as running before
        the watch says so. Taken only while the cache still holds that Job suspended.

        The answer is older than anything the watch brings after it (the Job
        controller's ``startTime``, its pod counts), and it reaches the event loop
        through the coroutine that made the patch, which may run after the watch's
        newer event was applied on a busy loop. Taking it then would put an old Job
        back in the cache for good when nothing changes the Job again (a Job whose
        pods are refused creation): the build would wait for a start it never sees.
        Nor is a Job the watch has deleted meanwhile (a cancelled build) put back."""
        current = self.jobs.get(job.metadata.name)
        if current is None or current.metadata.uid != job.metadata.uid:
            return  # deleted meanwhile (cancelled), or made again: the watch knows better
        if current.spec.suspend:
            self.apply("jobs", "MODIFIED", job)

    # -- the watches (in threads) ---------------------------------------------

    def _watch_loop(self, kind: str, loop: asyncio.AbstractEventLoop) -> None:
        list_call = (
            self._batch.list_namespaced_job if kind == "jobs" else self._core.list_namespaced_pod
        )
        while not self._stopping.is_set():
            try:
                listed = list_call(
                    self._namespace,
                    label_selector=self._selector,
                    _request_timeout=LIST_TIMEOUT_SECONDS,
                )
                loop.call_soon_threadsafe(self.replace_all, kind, listed.items)
                self._watch(kind, list_call, listed.metadata.resource_version, loop)
            except ApiException as e:
                if e.status != 410:  # 410 Gone: resourceVersion expired; list again
                    log.warning("watch of %s failed: %s %s; again in 1 s", kind, e.status, e.reason)
                    self._stopping.wait(1.0)
            except Exception as e:
                if self._stopping.is_set():
                    return
                log.warning("watch of %s broke off: %r; again in 1 s", kind, e)
                self._stopping.wait(1.0)

    def _watch(
        self, kind: str, list_call: Any, version: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        while not self._stopping.is_set():
            w = _new_watch()
            self._watches.add(w)
            try:
                for event in w.stream(
                    list_call,
                    self._namespace,
                    label_selector=self._selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    # a connection that went silent (a restarted API server, a dropped
                    # NAT entry) ends here instead of holding the cache stale for good
                    _request_timeout=(LIST_TIMEOUT_SECONDS, WATCH_SECONDS + 15),
                ):
                    raw = event.get("raw_object") or {}
                    version = (raw.get("metadata") or {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        loop.call_soon_threadsafe(self.apply, kind, event["type"], event["object"])
            finally:
                self._watches.discard(w)


def start_events(core: Any, namespace: str, job: Any, pod: Any | None) -> list[Any]:
    """The events of a build's ``job`` and its pod, found by their uid: a Job of the same
    name made earlier (a build asked for again) left events of its own. Without ``pod``
    (the watch has not delivered it), the Job's pods are asked for by the Job
    controller's label (``batch.kubernetes.io/controller-uid``), so a pod's Warning (a
    FailedMount) is found whatever the watch's lag. Blocking (run it in a thread). A
    refusal (an older Role without ``events``) or an unreachable API server gives no
    events: the build then waits as it did before."""
    objects = [job] if pod is None else [job, pod]
    if pod is None:
        try:
            objects += core.list_namespaced_pod(
                namespace,
                label_selector=f"batch.kubernetes.io/controller-uid={job.metadata.uid}",
                _request_timeout=EVENTS_TIMEOUT_SECONDS,
            ).items
        except Exception as e:
            log.warning("cannot list the pods of %s: %s", job.metadata.name, e)
    events: list[Any] = []
    for obj in objects:
        try:
            found = core.list_namespaced_event(
                namespace,
                field_selector=f"involvedObject.uid={obj.metadata.uid}",
                _request_timeout=EVENTS_TIMEOUT_SECONDS,
            )
        except Exception as e:
            log.warning("cannot list the events of %s: %s", obj.metadata.name, e)
            continue
        events += found.items
    return events


class LogFollower:
    """Follows the builder container's log in a thread; lines go to the event loop.

    The log is read from the pod's start; the first ``skip`` lines (delivered before,
    by an earlier follower) are not delivered again. ``observe``, if given, gets every
    line read, those skipped included, before ``deliver`` gets it (the build's phases
    are known from all of them). ``done`` is set when the stream ends, however it ends.
    """

    def __init__(
        self,
        core: Any,
        namespace: str,
        pod: str,
        skip: int,
        deliver: Callable[[LogLine], None],
        loop: asyncio.AbstractEventLoop,
        observe: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.tail: deque[LogLine] = deque(maxlen=TAIL_LINES)
        """The last lines read, for ``classify_failure``."""
        self.seen = skip
        """Lines read so far, counting those skipped: where a new follower resumes."""
        self._core, self._namespace, self._pod = core, namespace, pod
        self._skip, self._deliver, self._loop = skip, deliver, loop
        self._observe = observe
        self._stop = threading.Event()
        self._response: Any = None
        self.done = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{pod}", daemon=True)
        self._thread.start()

    def _lines(self) -> Iterator[RawLine]:
        response = self._core.read_namespaced_pod_log(
            self._pod,
            self._namespace,
            container=CONTAINER,
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
            seen = 0
            for raw in self._lines():
                if self._stop.is_set():
                    return
                line = log_line_from_raw(raw)
                if line is None:
                    continue
                seen += 1
                self.tail.append(line)
                if self._observe is not None:
                    self._loop.call_soon_threadsafe(self._observe, line)
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
