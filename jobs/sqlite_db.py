"""The SQLite file behind ``jobs.store``: its schema, the columns added to state files
written by older versions, and the thread that checkpoints its write-ahead log."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    ref TEXT NOT NULL,
    ref_kind TEXT NOT NULL,
    sha TEXT NOT NULL,
    image TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    trigger TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    error_remembered INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    supersedable INTEGER NOT NULL DEFAULT 1,
    pid INTEGER,
    requester TEXT
);
CREATE INDEX IF NOT EXISTS builds_by_image ON builds (image, created_at);
CREATE INDEX IF NOT EXISTS builds_by_repo ON builds (repo, created_at);
CREATE INDEX IF NOT EXISTS builds_by_state ON builds (state, created_at);
CREATE INDEX IF NOT EXISTS builds_by_finish ON builds (finished_at);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_build_per_image
    ON builds (image) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS deliveries (
    provider TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    decision TEXT NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX IF NOT EXISTS deliveries_by_age ON deliveries (received_at);
CREATE TABLE IF NOT EXISTS build_logs (
    build_id TEXT NOT NULL REFERENCES builds (id),
    seq INTEGER NOT NULL,
    phase TEXT NOT NULL,
    message TEXT NOT NULL,
    builder INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (build_id, seq)
);
"""
# After the columns added since the first schema exist (``Store.__init__``).
INDEXES = """
CREATE INDEX IF NOT EXISTS builds_by_requester ON builds (requester, created_at)
    WHERE requester IS NOT NULL;
CREATE INDEX IF NOT EXISTS active_builds_by_requester ON builds (requester)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS active_builds_by_repo ON builds (repo)
    WHERE state IN ('queued', 'running');
"""
# ``builder``: the line came from the build's own output (repo2docker), not from the
# service; a durable executor that follows a build again skips that many lines.


def open_database(path: str) -> sqlite3.Connection:
    """Open (creating or bringing up to date) the state file at ``path`` (or
    ``:memory:``): WAL mode, ``synchronous=NORMAL``, autocommit (the store opens its
    transactions itself), rows as ``sqlite3.Row``."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(build_logs)")}
    if "builder" not in columns:  # a state file from before the column existed
        db.execute("ALTER TABLE build_logs ADD COLUMN builder INTEGER NOT NULL DEFAULT 0")
    columns = {row[1] for row in db.execute("PRAGMA table_info(builds)")}
    if "requester" not in columns:  # a state file from before quotas (issue 16)
        db.execute("ALTER TABLE builds ADD COLUMN requester TEXT")
    db.executescript(INDEXES)
    return db


class Checkpointer:
    """Checkpoints the WAL from a thread of its own, after every ``EVERY`` writes and at
    least every ``PERIOD`` seconds while there were any, and once more at ``stop``."""

    EVERY = 200
    PERIOD = 5.0

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
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
