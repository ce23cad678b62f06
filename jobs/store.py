"""Build records and their logs in SQLite.

WAL mode with ``synchronous=NORMAL``: a committed record survives the process being
killed (the WAL is in the OS's hands); only a power loss can take the last commits.
That is the promise "durable before acknowledged" needs against crashes and
restarts. A partial unique index makes "one active build per image" a fact of the
database too, not only of the queue in memory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TemporaryError
from .model import Build, BuildState
from .sqlite_db import Checkpointer, open_database

_COLUMNS = (
    "id, repo, ref, ref_kind, sha, image, name, state, trigger, created_at, "
    "started_at, finished_at, error, error_remembered, attempts, supersedable, pid, requester"
)


LOG_CUT_PREFIX = "[log cut: "


def log_cut_marker(max_bytes: int) -> str:
    """The last stored line of a build whose log reached ``max_bytes``."""
    return (
        f"{LOG_CUT_PREFIX}this build's log reached build_logs.max_bytes ({max_bytes} bytes); "
        "later lines are not stored]"
    )


@dataclass
class _LogCursor:
    seq: int  # of the last line, -1 before the first
    size: int  # bytes of the messages stored
    cut: bool  # the cap was reached: nothing more is stored


class DuplicateActiveBuild(Exception):
    """Another build of the same image is already queued or running (maybe elsewhere)."""


def _to_build(row: sqlite3.Row) -> Build:
    data = dict(row)
    data["state"] = BuildState(data["state"])
    data["supersedable"] = bool(data["supersedable"])
    data["error_remembered"] = bool(data["error_remembered"])
    return Build(**data)


class Store:
    """All reads and writes of build records. Thread-safe; calls are short."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = str(path)
        self._db = open_database(str(path))
        self._lock = threading.RLock()
        self._depth = 0  # transactions open on the connection (the lock's holder's)
        self._log_cursors: dict[str, _LogCursor] = {}
        self._deliveries_since_prune = 0
        # Checkpoints (copying the WAL into the database, with an fsync) take tens of
        # milliseconds; on the caller's thread they stalled one request in a hundred.
        # A thread of the store's own does them instead (PASSIVE: never blocks writers).
        self._checkpointer: Checkpointer | None = None
        if str(path) != ":memory:":
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(str(path))

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()

    def check(self) -> None:
        """Return when the database answers a read of the builds table; raise
        ``TemporaryError`` naming the state file otherwise. Blocks: call it in a thread."""
        try:
            with self._lock:
                self._db.execute("SELECT 1 FROM builds LIMIT 1").fetchall()
        except sqlite3.Error as e:
            raise TemporaryError(f"the state store {self._path} cannot be read: {e}") from e

    def _wrote(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.wrote()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit every write made inside the block at once at its end, or none of them
        when it raises. Writes inside are the calling thread's alone (the store's lock
        is held): the block must not ``await``, or another request's writes would join
        it. Blocks nest; an inner one that raises undoes only its own writes."""
        with self._transaction():
            yield

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:  # inside an outer transaction: a savepoint of it
                name = f"s{self._depth}"
                self._db.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield self._db
                except BaseException:
                    self._db.execute(f"ROLLBACK TO {name}")
                    raise
                finally:
                    self._depth -= 1
                    self._db.execute(f"RELEASE {name}")
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self._wrote()

    def create(self, build: Build, *, supersede: Iterable[str] = ()) -> None:
        """Insert ``build``; mark the builds in ``supersede`` superseded in the same commit."""
        data = build.to_json()
        data["pid"] = build.pid
        data["supersedable"] = int(build.supersedable)
        data["error_remembered"] = int(build.error_remembered)
        data["requester"] = build.requester
        names = _COLUMNS.split(", ")
        try:
            with self._transaction() as db:
                for other in supersede:
                    db.execute(
                        "UPDATE builds SET state = ?, finished_at = ?, error = ? "
                        "WHERE id = ? AND state = 'queued'",
                        (
                            BuildState.SUPERSEDED,
                            build.created_at,
                            f"superseded by build {build.id} of {build.sha}",
                            other,
                        ),
                    )
                db.execute(
                    f"INSERT INTO builds ({_COLUMNS}) VALUES ({', '.join('?' * len(names))})",  # noqa: S608
                    [data[name] for name in names],
                )
        except sqlite3.IntegrityError as e:
            raise DuplicateActiveBuild(build.image) from e

    def update(self, build_id: str, **fields: Any) -> None:
        if "state" in fields:
            fields["state"] = str(fields["state"])
        for flag in ("supersedable", "error_remembered"):
            if flag in fields:
                fields[flag] = int(fields[flag])
        assignments = ", ".join(f"{key} = ?" for key in fields)
        with self._transaction() as db:
            db.execute(
                f"UPDATE builds SET {assignments} WHERE id = ?",  # noqa: S608 (keys are ours)
                [*fields.values(), build_id],
            )

    def get(self, build_id: str) -> Build | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM builds WHERE id = ?",  # noqa: S608
                (build_id,),
            ).fetchone()
        return _to_build(row) if row else None

    def latest_for_image(self, image: str) -> Build | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM builds WHERE image = ? "  # noqa: S608
                "ORDER BY created_at DESC LIMIT 1",
                (image,),
            ).fetchone()
        return _to_build(row) if row else None

    def active(self) -> list[Build]:
        """Queued and running builds, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM builds "  # noqa: S608
                "WHERE state IN ('queued', 'running') ORDER BY created_at, rowid"
            ).fetchall()
        return [_to_build(row) for row in rows]

    def quota_usage(
        self, *, requester: str | None = None, repo: str | None = None, since: float
    ) -> tuple[list[float], int]:
        """For quotas: the acceptance times (oldest first) of the builds ``requester``
        asked for after ``since``, and how many of them are queued or running; with
        ``repo`` instead, the same over every requested build of that repository.
        Builds cancelled or superseded before they started are not counted."""
        if (requester is None) == (repo is None):
            raise ValueError("give exactly one of requester and repo")
        who, value = ("requester = ?", requester) if repo is None else ("repo = ?", repo)
        with self._lock:
            rows = self._db.execute(
                f"SELECT created_at FROM builds WHERE {who} AND requester IS NOT NULL "  # noqa: S608
                "AND created_at > ? AND (started_at IS NOT NULL "
                "OR state NOT IN ('cancelled', 'superseded')) ORDER BY created_at",
                (value, since),
            ).fetchall()
            active = self._db.execute(
                f"SELECT COUNT(*) FROM builds WHERE {who} AND requester IS NOT NULL "  # noqa: S608
                "AND state IN ('queued', 'running')",
                (value,),
            ).fetchone()
        return [float(row[0]) for row in rows], int(active[0])

    def recent(
        self,
        *,
        repo: str | None = None,
        state: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Build]:
        """Builds newest first; ``before`` (a build id) pages on from that build."""
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
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM builds {where} "  # noqa: S608
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [_to_build(row) for row in rows]

    def built_images(self, limit: int = 1000) -> list[Build]:
        """The last successful build of each image, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM builds WHERE state = 'built' "  # noqa: S608
                "ORDER BY finished_at DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        seen: set[str] = set()
        builds = []
        for row in rows:
            build = _to_build(row)
            if build.image not in seen:
                seen.add(build.image)
                builds.append(build)
        return builds

    def delivery(self, provider: str, delivery_id: str) -> str | None:
        """The decision recorded for a webhook delivery (JSON text), if it was seen."""
        with self._lock:
            row = self._db.execute(
                "SELECT decision FROM deliveries WHERE provider = ? AND delivery_id = ?",
                (provider, delivery_id),
            ).fetchone()
        return None if row is None else str(row[0])

    def remember_delivery(
        self, provider: str, delivery_id: str, received_at: float, decision: str, keep: int
    ) -> None:
        """Record a delivery's decision; forget the oldest beyond ``keep``.

        The oldest are forgotten in batches (every ``keep // 10`` deliveries, at most
        100), so the table holds at most that many more than ``keep`` for a while and a
        delivery does not pay for a scan of the table.
        """
        self._deliveries_since_prune += 1
        prune = self._deliveries_since_prune >= max(min(keep // 10, 100), 1)
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?)",
                (provider, delivery_id, received_at, decision),
            )
            if prune:
                self._deliveries_since_prune = 0
                db.execute(
                    "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries "
                    "ORDER BY received_at DESC LIMIT -1 OFFSET ?)",
                    (keep,),
                )

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
        size = len(message.encode("utf-8", errors="replace"))
        with self._lock:
            cursor = self._log_cursor(build_id)
            if cursor.cut:
                return None
            if max_bytes is not None and cursor.size + size > max_bytes:
                phase, message, builder = "", log_cut_marker(max_bytes), False
                size, cursor.cut = len(message.encode()), True
            cursor.seq += 1
            cursor.size += size
            self._db.execute(
                "INSERT INTO build_logs (build_id, seq, phase, message, builder) "
                "VALUES (?, ?, ?, ?, ?)",
                (build_id, cursor.seq, phase, message, int(builder)),
            )
        self._wrote()
        return cursor.seq, phase, message

    def _log_cursor(self, build_id: str) -> _LogCursor:
        cursor = self._log_cursors.get(build_id)
        if cursor is None:
            seq, size = self._db.execute(
                "SELECT COALESCE(MAX(seq), -1), COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0) "
                "FROM build_logs WHERE build_id = ?",
                (build_id,),
            ).fetchone()
            last = self._db.execute(
                "SELECT message FROM build_logs WHERE build_id = ? ORDER BY seq DESC LIMIT 1",
                (build_id,),
            ).fetchone()
            cut = last is not None and str(last[0]).startswith(LOG_CUT_PREFIX)
            cursor = self._log_cursors[build_id] = _LogCursor(int(seq), int(size), cut)
        return cursor

    def count_logs(self, build_id: str, *, builder: bool) -> int:
        """How many of the build's lines came from the build itself (or the service)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM build_logs WHERE build_id = ? AND builder = ?",
                (build_id, int(builder)),
            ).fetchone()
        return int(row[0])

    def forget_log_cursor(self, build_id: str) -> None:
        with self._lock:
            self._log_cursors.pop(build_id, None)

    def prune_logs(self, finished_before: float, *, batch: int = 2000) -> int:
        """Delete at most ``batch`` log lines of builds that finished before
        ``finished_before`` (seconds since the epoch); returns how many were deleted.

        Lines of queued and running builds are never deleted; build records stay. One
        call is one short transaction: call it again until it returns less than
        ``batch``, off the event loop (``jobs/retention.py``).
        """
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM build_logs WHERE rowid IN ("
                "SELECT l.rowid FROM builds b JOIN build_logs l ON l.build_id = b.id "
                "WHERE b.finished_at < ? AND b.state NOT IN ('queued', 'running') LIMIT ?)",
                (finished_before, batch),
            ).rowcount
        return int(deleted)

    def logs(self, build_id: str, after: int = -1) -> list[tuple[str, str]]:
        """The build's log lines (phase, message) in order, from line ``after + 1``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT phase, message FROM build_logs WHERE build_id = ? AND seq > ? ORDER BY seq",
                (build_id, after),
            ).fetchall()
        return [(row[0], row[1]) for row in rows]
