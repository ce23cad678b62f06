"""A build's Job and its git credential Secret, written to the cluster: created, or
attached to when there; a finished Job of an earlier build of the image replaced;
deleted.

The Job's name comes from the image (``manifests.make_build_job``), so the API server
is the lock: a second request for the image, from any replica, gets 409 and attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from ...errors import BuildFailed, TemporaryError
from ...model import Build, LogLine
from ..base import Note
from . import credentials, manifests, status
from .cluster import Cluster
from .watch import WatchCache

REPLACE_WAIT_SECONDS = 60.0
"""How long a new build waits for the finished Job of an earlier build to go."""


class BuildJobs:
    """Writes build Jobs and their Secrets into ``cluster``, keeping ``cache`` (the
    executor's watch cache) told of the Jobs it made."""

    def __init__(self, cluster: Cluster, cache: WatchCache) -> None:
        self._cluster = cluster
        self._settings = cluster.settings
        self._cache = cache
        self.namespace = cluster.namespace

    async def create_or_attach(self, build: Build, on_log: Callable[[LogLine], None]) -> bool:
        """Create the build's Job, or find the one there. True when it was there. A
        finished Job of another build is deleted first (``_replace``)."""
        body = manifests.make_build_job(build, self._settings, self.namespace)
        for attempt in range(2):
            try:
                created = await asyncio.to_thread(
                    self._cluster.batch.create_namespaced_job, self.namespace, body
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
                    await self.delete(build.name)
                    raise
                return False
            job = await asyncio.to_thread(
                self._cluster.batch.read_namespaced_job, build.name, self.namespace
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
        its ``job`` (``credentials``); nothing when no credential covers the
        repository or the Secret is there. Raises ``BuildFailed`` (not remembered) when
        the API server refuses it."""
        credential = credentials.git_credential(build, self._settings)
        if credential is None:
            return
        body = credentials.make_git_secret(
            build, credential, self.namespace, job.metadata.uid, dict(job.metadata.labels or {})
        )
        try:
            await asyncio.to_thread(
                self._cluster.core.create_namespaced_secret, self.namespace, body
            )
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

    async def drop_git_secret(self, build: Build) -> None:
        """Delete ``build``'s git credential Secret, once the build is over (best effort:
        otherwise it goes with its Job)."""
        if credentials.git_credential(build, self._settings) is None:
            return
        with contextlib.suppress(ApiException, urllib3.exceptions.HTTPError):
            await asyncio.to_thread(
                self._cluster.core.delete_namespaced_secret,
                credentials.git_secret_name(build),
                self.namespace,
            )

    async def _replace(self, job: Any, on_log: Callable[[LogLine], None]) -> None:
        """Delete the finished Job of an earlier build and wait, at most
        ``REPLACE_WAIT_SECONDS``, until the watch saw it go, so that neither the
        cache nor the name still holds it when the new Job is made."""
        name, uid = job.metadata.name, job.metadata.uid
        on_log(Note("", f"deleting Job {self.namespace}/{name}, finished by an earlier build"))
        await self.delete(name)
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

    async def delete(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(
                self._cluster.batch.delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",
            )
