"""The store in a SQLite file: one host (a server, the CLI) and any number of processes
on it.

WAL mode with ``synchronous=NORMAL``: a committed record survives the process being
killed (the WAL is in the OS's hands); only a power loss can take the last commits.
That is the promise "durable before acknowledged" needs against crashes and
restarts. Checkpoints (copying the WAL into the database, with an fsync) take tens of
milliseconds; on the caller's thread they stalled one request in a hundred, so a
thread of the store's own does them (PASSIVE: never blocks writers).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import TemporaryError
from .base import DuplicateActiveBuild
from .migrations import STEPS, Dialect, Step, migrate
from .sql import LogConflict, SqlStore

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's transaction on the same file."""


class SqliteStore(SqlStore):
    """The store in the SQLite file at ``path`` (or ``:memory:``), created if missing
    and brought up to date (``jobs.store.migrations``)."""

    PRUNE_DELIVERIES = (
        "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries "
        "ORDER BY received_at DESC LIMIT -1 OFFSET ?)"
    )
    PRUNE_LOGS = (
        "DELETE FROM build_logs WHERE rowid IN ("
        "SELECT l.rowid FROM builds b JOIN build_logs l ON l.build_id = b.id "
        "WHERE b.finished_at < ? AND b.state NOT IN ('queued', 'running') LIMIT ?)"
    )
    MESSAGE_BYTES = "LENGTH(CAST(message AS BLOB))"

    def __init__(self, path: Path | str, *, steps: Sequence[Step] = STEPS) -> None:
        super().__init__()
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = str(path)
        self.description = f"the state file {path}"
        self._db = open_database(self._path, steps)
        self._lock = threading.RLock()
        self._depth = 0  # transactions open on the connection (the lock's holder's)
        self._checkpointer: Checkpointer | None = None
        if not memory:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(self._path)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()

    def check(self) -> None:
        try:
            self._rows("SELECT 1 FROM builds LIMIT 1")
        except sqlite3.Error as e:
            raise TemporaryError(f"the state store {self._path} cannot be read: {e}") from e

    def _wrote(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.wrote()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._execute(sql, params).rowcount)

    def _insert_returning(self, sql: str, params: Sequence[Any]) -> Any:
        return self._execute(sql, params).fetchone()[0]

    def _execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        with self._lock:
            try:
                cursor = self._db.execute(sql, params)
            except sqlite3.IntegrityError as e:
                if sql.startswith("INSERT INTO builds"):
                    raise DuplicateActiveBuild(str(params[5])) from e
                if sql.startswith("INSERT INTO build_logs"):
                    raise LogConflict(str(params[0])) from e
                raise
            if not self._depth:
                self._wrote()
            return cursor

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:  # inside an outer transaction: a savepoint of it
                name = f"s{self._depth}"
                self._db.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
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
                yield
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


class _SqliteSchema:
    """``jobs.store.migrations.Schema`` on a connection."""

    dialect: Dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str) -> None:
        self._db.execute(sql)

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def version(self) -> int:
        return int(
            self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[
                0
            ]
        )

    def record(self, version: int, description: str, at: float) -> None:
        self._db.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (version, description, at),
        )


def open_database(path: str, steps: Sequence[Step] = STEPS) -> sqlite3.Connection:
    """Open (creating or bringing up to date) the state file at ``path`` (or
    ``:memory:``) with the schema ``steps`` make: WAL mode, ``synchronous=NORMAL``,
    autocommit (the store opens its transactions itself). Raises
    ``jobs.store.migrations.SchemaTooNew``, or ``sqlite3.Error`` (a step failed: the
    file is left as it was)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
    try:
        migrate(_SqliteSchema(db), steps)
    except BaseException:
        db.execute("ROLLBACK")
        db.close()
        raise
    db.execute("COMMIT")
    return db


class Checkpointer:
    """Checkpoints the WAL from a thread of its own, after every ``EVERY`` writes and at
    least every ``PERIOD`` seconds while there were any, and once more at ``stop``."""

    EVERY = 200
    PERIOD = 5.0

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._writes = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        self._writes += 1
        if self._writes >= self.EVERY:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.PERIOD)
            self._wake.clear()
            if self._writes:
                self._writes = 0
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()
