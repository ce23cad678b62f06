"""Fair use of on-demand builds: quotas per requester and per repository (issue 16).

The policy (``check_quota``, ``statuses``) is written once, as pure functions of counts,
limits and the time. The counts come from one of two places, behind ``QuotaCounter``:

- ``StoreCounter``: the build records. Right for the local executor, whose builds all
  are in this process's state file, and it survives restarts with them.
- ``ClusterCounter``: the build Jobs in the cluster, which every replica sees the same,
  plus the builds this process accepted whose Job is not created yet. Right for the
  kubernetes executor, where each replica has a state file of its own. A finished Job
  is counted until Kubernetes deletes it, so Jobs are kept at least as long as the
  longest window (``executors.kubernetes.manifests.make_build_job``).

What counts: a build is *started* when it is accepted (recorded as queued), by the
time it was accepted; a build cancelled or superseded before it ran is not counted at
all, and cache hits and joins of an identical build create no build. Builds nobody
asked for by name (push webhooks, configured repositories) have no requester and are
neither counted nor refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .. import metrics
from ..errors import QuotaExceeded
from ..model import Build, BuildState, CountedBuild
from ..settings import QuotaLimits, QuotaSettings

QUEUED_RETRY_SECONDS = 30
"""``Retry-After`` for ``max_queued``: it frees when a build finishes, which nobody can
say in advance."""

PER_USER = "per_user"
PER_REPO = "per_repo"


@dataclass(frozen=True)
class Usage:
    """What a requester (or repository) has now."""

    started: tuple[float, ...]
    """Acceptance times (Unix seconds) of the counted builds in the window, oldest first."""
    active: int
    """Builds queued or running now."""


@dataclass(frozen=True)
class QuotaStatus:
    """One quota as ``GET /api/v1/quotas/me`` shows it."""

    quota: str
    limit: int
    used: int
    frees_at: float | None
    """When ``used`` next drops (a window quota's oldest build ages out); None when
    nothing is used or it drops when a build finishes."""

    def to_json(self) -> dict[str, Any]:
        return {
            "quota": self.quota,
            "limit": self.limit,
            "used": self.used,
            "remaining": max(self.limit - self.used, 0),
            "frees_at": self.frees_at,
        }


# -- the policy (pure) ----------------------------------------------------------


def _in_window(usage: Usage, limits: QuotaLimits, now: float) -> list[float]:
    return sorted(t for t in usage.started if t > now - limits.window)


def check_quota(scope: str, who: str, limits: QuotaLimits, usage: Usage, now: float) -> None:
    """Raise ``QuotaExceeded`` when one more build would exceed ``limits``.

    ``scope`` is ``per_user`` or ``per_repo`` (it names the quota in the error);
    ``who`` is how the message names the requester or repository. The window quota
    is checked first: it is the one whose end is known.
    """
    started = _in_window(usage, limits, now)
    if limits.builds_per_window and len(started) >= limits.builds_per_window:
        frees_at = started[len(started) - limits.builds_per_window] + limits.window
        retry = max(1, math.ceil(frees_at - now))
        raise QuotaExceeded(
            f"{who} started {len(started)} builds in the last {limits.window:g} s, the most "
            f"quotas.{scope}.builds_per_window allows; the next may start in {retry} s",
            quota=f"{scope}.builds_per_window",
            retry_after=retry,
            frees_at=frees_at,
        )
    if limits.max_queued and usage.active >= limits.max_queued:
        raise QuotaExceeded(
            f"{who} has {usage.active} builds queued or running, the most "
            f"quotas.{scope}.max_queued allows; ask again when one of them finishes",
            quota=f"{scope}.max_queued",
            retry_after=QUEUED_RETRY_SECONDS,
            frees_at=None,
        )


def statuses(scope: str, limits: QuotaLimits, usage: Usage, now: float) -> list[QuotaStatus]:
    """The enabled quotas of ``limits``, with what ``usage`` uses of them."""
    found = []
    if limits.builds_per_window:
        started = _in_window(usage, limits, now)
        found.append(
            QuotaStatus(
                f"{scope}.builds_per_window",
                limits.builds_per_window,
                len(started),
                started[0] + limits.window if started else None,
            )
        )
    if limits.max_queued:
        found.append(QuotaStatus(f"{scope}.max_queued", limits.max_queued, usage.active, None))
    return found


# -- the counts -------------------------------------------------------------------


class QuotaCounter(Protocol):
    def usage(
        self, *, requester: str | None, repo: str | None, since: float, pending: Iterable[Build]
    ) -> Usage:
        """The builds of ``requester`` (or, with ``repo``, the requested builds of that
        repository) accepted after ``since``, and those active now. ``pending``: the
        builds this process holds (queued or running), some maybe not counted elsewhere
        yet. Exactly one of ``requester`` and ``repo`` is given."""


class StoreCounter:
    """Counts from the build records (``Store.quota_usage``)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def usage(
        self, *, requester: str | None, repo: str | None, since: float, pending: Iterable[Build]
    ) -> Usage:
        started, active = self._store.quota_usage(requester=requester, repo=repo, since=since)
        return Usage(tuple(started), active)


class ClusterCounter:
    """Counts from the cluster's build Jobs (``builds``: the executor's watch cache),
    and the pending builds of this process whose Job is not there yet. A Job deleted
    (a cancelled or superseded build) is not counted."""

    def __init__(self, builds: Callable[[], Iterable[CountedBuild]]) -> None:
        self._builds = builds

    def usage(
        self, *, requester: str | None, repo: str | None, since: float, pending: Iterable[Build]
    ) -> Usage:
        seen = {build.build_id: build for build in self._builds()}
        for build in pending:
            if build.id not in seen and build.state is not BuildState.SUPERSEDED:
                seen[build.id] = CountedBuild.of(build)
        mine = [
            build
            for build in seen.values()
            if build.requester is not None
            and (build.repo == repo if repo is not None else build.requester == requester)
        ]
        started = sorted(build.created_at for build in mine if build.created_at > since)
        return Usage(tuple(started), sum(1 for build in mine if build.active))


# -- the service's side -----------------------------------------------------------


class Quotas:
    """The quota settings and a counter: what ``BuildService`` asks before it records
    a requested build, and what ``GET /api/v1/quotas/me`` shows."""

    def __init__(self, settings: QuotaSettings, counter: QuotaCounter) -> None:
        self.settings = settings
        self.counter = counter

    @property
    def enabled(self) -> bool:
        """Whether any quota is on."""
        return self.settings.per_user.enabled or self.settings.per_repo.enabled

    def _usage(
        self, limits: QuotaLimits, now: float, pending: Iterable[Build], **who: str | None
    ) -> Usage:
        return self.counter.usage(
            requester=who.get("requester"),
            repo=who.get("repo"),
            since=now - limits.window,
            pending=pending,
        )

    def check(self, requester: str, repo: str, now: float, pending: Iterable[Build]) -> None:
        """Raise ``QuotaExceeded`` (and count the refusal) when ``requester`` may not
        start one more build of ``repo`` now. Synchronous on purpose: the caller
        records the build right after, with no await in between."""
        pending = list(pending)
        try:
            user, per_repo = self.settings.per_user, self.settings.per_repo
            if user.enabled:
                usage = self._usage(user, now, pending, requester=requester)
                check_quota(PER_USER, requester, user, usage, now)
            if per_repo.enabled:
                usage = self._usage(per_repo, now, pending, repo=repo)
                check_quota(PER_REPO, repo, per_repo, usage, now)
        except QuotaExceeded as e:
            metrics.QUOTA_REFUSALS.labels(e.quota).inc()
            raise

    def status(self, requester: str, now: float, pending: Iterable[Build]) -> list[QuotaStatus]:
        """The per-user quotas that are on, and what ``requester`` uses of them."""
        user = self.settings.per_user
        if not user.enabled:
            return []
        return statuses(PER_USER, user, self._usage(user, now, pending, requester=requester), now)
