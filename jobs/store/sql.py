"""``Store`` over SQL that SQLite and PostgreSQL both speak (``SqlStore``), on top of three
primitives each implementation provides (``_rows``, ``_write``, ``_transaction``).
Queries are written with ``?`` placeholders; an implementation whose driver wants
another style translates them.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from ..model import Build, BuildState, DeletionTotals, ImageDeletion
from .base import LOG_CUT_PREFIX, Store, StoreUnavailable, log_cut_marker

COLUMNS = (
    "id, repo, ref, ref_kind, sha, image, name, state, trigger, created_at, "
    "started_at, finished_at, error, error_remembered, attempts, supersedable, pid, requester, "
    "provider"
)
_NAMES = tuple(COLUMNS.split(", "))

LOG_INSERT_TRIES = 20
"""How often a log line is inserted again after another process took its number."""


class LogConflict(Exception):
    """A log line's number was taken by another process writing the same build's log."""


@dataclass
class _LogCursor:
    seq: int  # of the last line, -1 before the first
    size: int  # bytes of the messages stored
    cut: bool  # the cap was reached: nothing more is stored


def to_build(row: Sequence[Any]) -> Build:
    """A ``Build`` from a row of ``COLUMNS``."""
    data = dict(zip(_NAMES, row, strict=True))
    data["state"] = BuildState(data["state"])
    data["supersedable"] = bool(data["supersedable"])
    data["error_remembered"] = bool(data["error_remembered"])
    return Build(**data)


class SqlStore(Store):
    """``Store`` over SQL both databases speak. Subclasses provide the primitives and
    the two statements that differ (``PRUNE_DELIVERIES``, ``PRUNE_LOGS``)."""

    PRUNE_DELIVERIES: str
    """Delete the deliveries older than the newest ``?`` ones."""
    PRUNE_LOGS: str
    """Delete at most ``?`` lines of builds finished before ``?`` (params: time, batch)."""
    MESSAGE_BYTES: str
    """The length of ``message`` in bytes (UTF-8)."""

    def __init__(self) -> None:
        self._cursor_lock = threading.RLock()
        self._log_cursors: dict[str, _LogCursor] = {}
        self._deliveries_since_prune = 0

    # -- primitives ------------------------------------------------------------

    @abc.abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows a query answers."""

    @abc.abstractmethod
    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (committed at once outside a transaction); the number of
        rows it changed. Raises ``DuplicateActiveBuild`` for a violated unique index of
        builds and ``LogConflict`` for a taken log line number."""

    @abc.abstractmethod
    def _insert_returning(self, sql: str, params: Sequence[Any]) -> Any:
        """Run an ``INSERT ... RETURNING x``; x. Raises as ``_write`` does."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """``transaction``: nested blocks are savepoints."""

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    def _atomic(self) -> AbstractContextManager[None]:
        """A block whose writes commit together: ``_transaction``, or nothing more inside
        one of this thread's (where a savepoint costs round trips, on PostgreSQL)."""
        return nullcontext() if self._in_transaction() else self._transaction()

    def _in_transaction(self) -> bool:
        """Whether the calling thread has a transaction open (False: do not know)."""
        return False

    # -- builds ----------------------------------------------------------------

    def create(self, build: Build, *, supersede: Iterable[str] = ()) -> None:
        data = build.to_json()
        data["pid"] = build.pid
        data["supersedable"] = int(build.supersedable)
        data["error_remembered"] = int(build.error_remembered)
        data["requester"] = build.requester
        with self._transaction():
            for other in supersede:
                self._write(
                    "UPDATE builds SET state = ?, finished_at = ?, error = ? "
                    "WHERE id = ? AND state = 'queued'",
                    (
                        str(BuildState.SUPERSEDED),
                        build.created_at,
                        f"superseded by build {build.id} of {build.sha}",
                        other,
                    ),
                )
            self._write(
                f"INSERT INTO builds ({COLUMNS}) VALUES ({', '.join('?' * len(_NAMES))})",  # noqa: S608
                [data[name] for name in _NAMES],
            )

    def update(self, build_id: str, **fields: Any) -> None:
        if "state" in fields:
            fields["state"] = str(fields["state"])
        for flag in ("supersedable", "error_remembered"):
            if flag in fields:
                fields[flag] = int(fields[flag])
        unknown = set(fields) - set(_NAMES)
        if unknown:
            raise ValueError(f"not a column of builds: {sorted(unknown)}")
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self._write(
            f"UPDATE builds SET {assignments} WHERE id = ?",  # noqa: S608 (keys are ours)
            [*fields.values(), build_id],
        )

    def _builds(self, where: str, params: Sequence[Any] = ()) -> list[Build]:
        rows = self._rows(f"SELECT {COLUMNS} FROM builds {where}", params)  # noqa: S608
        return [to_build(row) for row in rows]

    def get(self, build_id: str) -> Build | None:
        found = self._builds("WHERE id = ?", (build_id,))
        return found[0] if found else None

    def latest_for_image(self, image: str) -> Build | None:
        found = self._builds(
            "WHERE image = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", (image,)
        )
        return found[0] if found else None

    def active(self) -> list[Build]:
        return self._builds("WHERE state IN ('queued', 'running') ORDER BY created_at, rowid")

    def quota_usage(
        self, *, requester: str | None = None, repo: str | None = None, since: float
    ) -> tuple[list[float], int]:
        if (requester is None) == (repo is None):
            raise ValueError("give exactly one of requester and repo")
        who, value = ("requester = ?", requester) if repo is None else ("repo = ?", repo)
        rows = self._rows(
            f"SELECT created_at FROM builds WHERE {who} AND requester IS NOT NULL "  # noqa: S608
            "AND created_at > ? AND (started_at IS NOT NULL "
            "OR state NOT IN ('cancelled', 'superseded')) ORDER BY created_at",
            (value, since),
        )
        active = self._rows(
            f"SELECT COUNT(*) FROM builds WHERE {who} AND requester IS NOT NULL "  # noqa: S608
            "AND state IN ('queued', 'running')",
            (value,),
        )
        return [float(row[0]) for row in rows], int(active[0][0])

    def recent(
        self,
        *,
        repo: str | None = None,
        state: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Build]:
        clauses: list[str] = []
        params: list[object] = []
        if repo is not None:
            clauses.append("repo = ?")
            params.append(repo)
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        if before is not None:
            clauses.append(
                "(created_at, rowid) < (SELECT created_at, rowid FROM builds WHERE id = ?)"
            )
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._builds(
            f"{where} ORDER BY created_at DESC, rowid DESC LIMIT ?", [*params, limit]
        )

    def built_images(self, limit: int = 1000) -> list[Build]:
        seen: set[str] = set()
        builds = []
        for build in self._builds(
            "WHERE state = 'built' ORDER BY finished_at DESC, rowid DESC LIMIT ?", (limit,)
        ):
            if build.image not in seen:
                seen.add(build.image)
                builds.append(build)
        return builds

    # -- image deletions (retention, issue 26) ------------------------------------

    def record_deletions(self, deletions: Iterable[ImageDeletion]) -> None:
        with self._atomic():
            for d in deletions:
                self._write(
                    "INSERT INTO image_deletions (image, repository, digest, deleted_at, "
                    "run_id, freed_bytes) VALUES (?, ?, ?, ?, ?, ?)",
                    (d.image, d.repository, d.digest, d.deleted_at, d.run_id, d.freed_bytes),
                )

    def deletions(
        self,
        limit: int = 100,
        *,
        since: float | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ImageDeletion]:
        columns = "SELECT image, repository, digest, deleted_at, run_id, freed_bytes "
        order = " ORDER BY deleted_at DESC, image LIMIT ?"
        since = 0.0 if since is None else since
        if after is None:
            sql = columns + "FROM image_deletions WHERE deleted_at >= ?" + order
            rows = self._rows(sql, (since, limit))
        else:
            sql = (
                columns + "FROM image_deletions WHERE deleted_at >= ? AND "
                "(deleted_at < ? OR (deleted_at = ? AND image > ?))" + order
            )
            rows = self._rows(sql, (since, after[0], after[0], after[1], limit))
        return [
            ImageDeletion(str(a), str(b), str(c), float(d), str(e), None if f is None else int(f))
            for a, b, c, d, e, f in rows
        ]

    def deletion_totals(self) -> DeletionTotals:
        (images,) = self._rows("SELECT COUNT(*) FROM image_deletions", ())
        (manifests,) = self._rows(
            "SELECT COUNT(*), SUM(freed) FROM (SELECT run_id, digest, MAX(freed_bytes) AS freed "
            "FROM image_deletions GROUP BY run_id, digest) AS m",
            (),
        )
        return DeletionTotals(int(images[0]), int(manifests[0]), int(manifests[1] or 0))

    def last_deletions(self) -> dict[str, float]:
        rows = self._rows("SELECT image, MAX(deleted_at) FROM image_deletions GROUP BY image", ())
        return {str(image): float(at) for image, at in rows}

    def note_request(self, image: str, at: float) -> None:
        with self._atomic():
            self._write(
                "INSERT INTO image_requests (image, last_requested_at) VALUES (?, ?) "
                "ON CONFLICT (image) DO UPDATE SET last_requested_at = "
                "excluded.last_requested_at "
                "WHERE image_requests.last_requested_at < excluded.last_requested_at",
                (image, at),
            )

    def last_requests(self, since: float = 0.0) -> dict[str, float]:
        rows = self._rows(
            "SELECT image, last_requested_at FROM image_requests WHERE last_requested_at >= ?",
            (since,),
        )
        return {str(image): float(at) for image, at in rows}

    # -- deliveries --------------------------------------------------------------

    def delivery(self, provider: str, delivery_id: str) -> str | None:
        rows = self._rows(
            "SELECT decision FROM deliveries WHERE provider = ? AND delivery_id = ?",
            (provider, delivery_id),
        )
        return None if not rows else str(rows[0][0])

    def remember_delivery(
        self, provider: str, delivery_id: str, received_at: float, decision: str, keep: int
    ) -> bool:
        # Pruned every keep // 10 deliveries (at most 100), so the table holds at most
        # that many more than ``keep`` for a while and a delivery does not pay for a scan.
        with self._cursor_lock:
            self._deliveries_since_prune += 1
            prune = self._deliveries_since_prune >= max(min(keep // 10, 100), 1)
            if prune:
                self._deliveries_since_prune = 0
        with self._atomic():
            added = self._write(
                "INSERT INTO deliveries (provider, delivery_id, received_at, decision) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (provider, delivery_id) DO NOTHING",
                (provider, delivery_id, received_at, decision),
            )
            if prune:
                self._write(self.PRUNE_DELIVERIES, (keep,))
        return added == 1

    # -- logs ------------------------------------------------------------------

    def append_log(
        self,
        build_id: str,
        phase: str,
        message: str,
        *,
        builder: bool = False,
        max_bytes: int | None = None,
    ) -> tuple[int, str, str] | None:
        # The line's number is the database's (the next after the build's last), so a
        # second process writing the same build's log (two replicas following one build
        # for a moment) loses no line; on PostgreSQL two such inserts may take one
        # number at once, and the one refused takes the next. The cap is counted here.
        size = len(message.encode("utf-8", errors="replace"))
        with self._cursor_lock:
            cursor = self._log_cursor(build_id)
            if cursor.cut:
                return None
            if max_bytes is not None and cursor.size + size > max_bytes:
                phase, message, builder = "", log_cut_marker(max_bytes), False
                size, cursor.cut = len(message.encode()), True
            for _ in range(LOG_INSERT_TRIES):
                try:
                    seq = self._insert_returning(
                        "INSERT INTO build_logs (build_id, seq, phase, message, builder) "
                        "SELECT ?, COALESCE(MAX(seq), -1) + 1, ?, ?, ? FROM build_logs "
                        "WHERE build_id = ? RETURNING seq",
                        (build_id, phase, message, int(builder), build_id),
                    )
                    break
                except LogConflict:
                    continue
            else:
                raise StoreUnavailable(f"the log of build {build_id} is being written elsewhere")
            cursor.seq = int(seq)
            cursor.size += size
            return cursor.seq, phase, message

    def _log_cursor(self, build_id: str) -> _LogCursor:
        cursor = self._log_cursors.get(build_id)
        if cursor is None:
            seq, size = self._rows(
                f"SELECT COALESCE(MAX(seq), -1), COALESCE(SUM({self.MESSAGE_BYTES}), 0) "  # noqa: S608
                "FROM build_logs WHERE build_id = ?",
                (build_id,),
            )[0]
            last = self._rows(
                "SELECT message FROM build_logs WHERE build_id = ? ORDER BY seq DESC LIMIT 1",
                (build_id,),
            )
            cut = bool(last) and str(last[0][0]).startswith(LOG_CUT_PREFIX)
            cursor = self._log_cursors[build_id] = _LogCursor(int(seq), int(size), cut)
        return cursor

    def count_logs(self, build_id: str, *, builder: bool) -> int:
        rows = self._rows(
            "SELECT COUNT(*) FROM build_logs WHERE build_id = ? AND builder = ?",
            (build_id, int(builder)),
        )
        return int(rows[0][0])

    def forget_log_cursor(self, build_id: str) -> None:
        with self._cursor_lock:
            self._log_cursors.pop(build_id, None)

    def prune_logs(self, finished_before: float, *, batch: int = 2000) -> int:
        with self._transaction():
            return self._write(self.PRUNE_LOGS, (finished_before, batch))

    def logs(self, build_id: str, after: int = -1) -> list[tuple[str, str]]:
        rows = self._rows(
            "SELECT phase, message FROM build_logs WHERE build_id = ? AND seq > ? ORDER BY seq",
            (build_id, after),
        )
        return [(row[0], row[1]) for row in rows]
