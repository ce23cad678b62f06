"""The store's interface: ``Store``, every read and write of build records, their logs
and webhook delivery records that the pipeline makes, and its errors. ``jobs.store.sql``
implements it once over SQL that SQLite and PostgreSQL both speak.

Calls are synchronous and short: the pipeline calls them from the event loop, between
decisions that must not be interleaved with other requests' (``jobs.coordinator.intake``). Each
implementation bounds how long a call can take (``jobs.store.postgres`` for a
networked database) and raises ``StoreUnavailable`` when the database cannot answer.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from ..errors import TemporaryError
from ..model import Build, DeletionTotals, ImageDeletion

LOG_CUT_PREFIX = "[log cut: "


def log_cut_marker(max_bytes: int) -> str:
    """The last stored line of a build whose log reached ``max_bytes``."""
    return (
        f"{LOG_CUT_PREFIX}this build's log reached build_logs.max_bytes ({max_bytes} bytes); "
        "later lines are not stored]"
    )


class DuplicateActiveBuild(Exception):
    """Another build of the same image is already queued or running (maybe elsewhere)."""


class StoreUnavailable(TemporaryError):
    """The database did not answer (unreachable, timed out, refused the connection):
    nothing was written. Answered 503 with ``Retry-After``; a webhook delivery is not
    acknowledged, so the forge delivers it again."""

    default_retry_after = 5


class Store(abc.ABC):
    """All reads and writes of build records, logs and delivery records.

    Thread-safe. Every method may raise ``StoreUnavailable`` (a ``TemporaryError``)
    when the database cannot answer; then nothing was written.
    """

    shared: bool = False
    """Whether every replica uses this same database (PostgreSQL). Readiness then reports
    it as a shared dependency (degraded), not as this pod's own: a database that is down
    for all replicas must not take them all out of their Service (issue 20)."""

    description: str
    """What it is, for messages (a file's path, or a database's host and name; never
    a password)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def check(self) -> None:
        """Return when the database answers a read of the builds table; raise
        ``TemporaryError`` naming it otherwise. Blocks: call it in a thread."""

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Commit every write made inside the block at once at its end, or none of them
        when it raises. Writes inside are the calling thread's alone: the block must not
        ``await``, or another request's writes would join it. Blocks nest; an inner one
        that raises undoes only its own writes."""

    @abc.abstractmethod
    def create(self, build: Build, *, supersede: Iterable[str] = ()) -> None:
        """Insert ``build``; mark the queued builds in ``supersede`` superseded in the
        same commit. Raises ``DuplicateActiveBuild`` when a build of the same image is
        queued or running (in any process sharing the database); then nothing changed."""

    @abc.abstractmethod
    def update(self, build_id: str, **fields: Any) -> None: ...

    @abc.abstractmethod
    def get(self, build_id: str) -> Build | None: ...

    @abc.abstractmethod
    def latest_for_image(self, image: str) -> Build | None: ...

    @abc.abstractmethod
    def active(self) -> list[Build]:
        """Queued and running builds, oldest first."""

    @abc.abstractmethod
    def quota_usage(
        self, *, requester: str | None = None, repo: str | None = None, since: float
    ) -> tuple[list[float], int]:
        """For quotas: the acceptance times (oldest first) of the builds ``requester``
        asked for after ``since``, and how many of them are queued or running; with
        ``repo`` instead, the same over every requested build of that repository.
        Builds cancelled or superseded before they started are not counted."""

    @abc.abstractmethod
    def recent(
        self,
        *,
        repo: str | None = None,
        state: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Build]:
        """Builds newest first; ``before`` (a build id) pages on from that build."""

    @abc.abstractmethod
    def built_images(self, limit: int = 1000) -> list[Build]:
        """The last successful build of each image, newest first."""

    @abc.abstractmethod
    def record_deletions(self, deletions: Iterable[ImageDeletion]) -> None:
        """Record images retention deleted from the registry, in one transaction."""

    @abc.abstractmethod
    def deletions(
        self,
        limit: int = 100,
        *,
        since: float | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ImageDeletion]:
        """Recorded deletions, newest first (ties by image); with ``since``, only those
        at or after it (Unix seconds); with ``after`` (``deleted_at``, ``image`` of the
        last deletion of a page), only those that come after it in that order."""

    @abc.abstractmethod
    def deletion_totals(self) -> DeletionTotals:
        """What every recorded deletion adds up to (``/metrics``)."""

    @abc.abstractmethod
    def last_deletions(self) -> dict[str, float]:
        """When each deleted image was last deleted (Unix seconds)."""

    @abc.abstractmethod
    def note_request(self, image: str, at: float) -> None:
        """Record that ``image`` was requested at ``at`` (Unix seconds), unless a later
        request is recorded already."""

    @abc.abstractmethod
    def last_requests(self, since: float = 0.0) -> dict[str, float]:
        """The newest recorded request of each image requested at or after ``since``."""

    @abc.abstractmethod
    def delivery(self, provider: str, delivery_id: str) -> str | None:
        """The decision recorded for a webhook delivery (JSON text), if it was seen."""

    @abc.abstractmethod
    def remember_delivery(
        self, provider: str, delivery_id: str, received_at: float, decision: str, keep: int
    ) -> bool:
        """Record a delivery's decision unless one is recorded already (by another
        process that received the same delivery at the same time); False then, and
        the recorded one stands. Forgets the oldest beyond ``keep``, in batches."""

    @abc.abstractmethod
    def append_log(
        self,
        build_id: str,
        phase: str,
        message: str,
        *,
        builder: bool = False,
        max_bytes: int | None = None,
    ) -> tuple[int, str, str] | None:
        """Append a line; returns its sequence number (0 for the first line), phase and
        message as stored.

        With ``max_bytes``, the line that would take the build's stored messages past
        that many bytes (UTF-8) is replaced by ``log_cut_marker`` (a service line), and
        every later line is dropped: None is returned for those.
        """

    @abc.abstractmethod
    def count_logs(self, build_id: str, *, builder: bool) -> int:
        """How many of the build's lines came from the build itself (or the service)."""

    @abc.abstractmethod
    def forget_log_cursor(self, build_id: str) -> None: ...

    @abc.abstractmethod
    def prune_logs(self, finished_before: float, *, batch: int = 2000) -> int:
        """Delete at most ``batch`` log lines of builds that finished before
        ``finished_before`` (seconds since the epoch); returns how many were deleted.

        Lines of queued and running builds are never deleted; build records stay. One
        call is one short transaction: call it again until it returns less than
        ``batch``, off the event loop (``jobs.store.retention``).
        """

    @abc.abstractmethod
    def logs(self, build_id: str, after: int = -1) -> list[tuple[str, str]]:
        """The build's log lines (phase, message) in order, from line ``after + 1``."""
