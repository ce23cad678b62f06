"""The schema of the store, as numbered steps that bring any database up to date.

A database records the steps applied to it in ``schema_migrations``; opening a store
applies the missing ones, in order, inside the one transaction that records them (both
SQLite and PostgreSQL undo DDL with the transaction), while holding the database's
write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so that
replicas starting together migrate once. A database whose schema is newer than the
steps here (a downgrade) is refused: an older version cannot know what it would break.

Step 1 is the schema state files had before steps were recorded, written so that it
also completes the files of every earlier version (the columns ``builder`` and
``requester`` that later versions added) and leaves a current one as it is.

A migration tool (Alembic) would bring SQLAlchemy and Mako into a process whose idle
memory is held to 60 MiB (bench/README.md: +11 MiB and +400 ms of imports measured
here) to run these statements; the runner below is the part of it we need.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]


class Schema(Protocol):
    """What a step may do to a database, inside the migration's transaction."""

    dialect: Dialect

    def execute(self, sql: str) -> None: ...

    def columns(self, table: str) -> set[str]:
        """The names of ``table``'s columns (empty when there is no such table)."""
        ...

    def version(self) -> int:
        """The newest step recorded in ``schema_migrations`` (0 for none)."""
        ...

    def record(self, version: int, description: str, at: float) -> None: ...


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Schema], None]


class SchemaTooNew(Exception):
    """The database was migrated by a newer version of binderhub-service."""


MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS builds_by_image ON builds (image, created_at)",
    "CREATE INDEX IF NOT EXISTS builds_by_repo ON builds (repo, created_at)",
    "CREATE INDEX IF NOT EXISTS builds_by_state ON builds (state, created_at)",
    "CREATE INDEX IF NOT EXISTS builds_by_finish ON builds (finished_at)",
    # "one active build per image" as a fact of the database, for every process
    "CREATE UNIQUE INDEX IF NOT EXISTS one_active_build_per_image "
    "ON builds (image) WHERE state IN ('queued', 'running')",
    "CREATE INDEX IF NOT EXISTS deliveries_by_age ON deliveries (received_at)",
    "CREATE INDEX IF NOT EXISTS builds_by_requester ON builds (requester, created_at) "
    "WHERE requester IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS active_builds_by_requester ON builds (requester) "
    "WHERE state IN ('queued', 'running')",
    "CREATE INDEX IF NOT EXISTS active_builds_by_repo ON builds (repo) "
    "WHERE state IN ('queued', 'running')",
)


def _tables(dialect: Dialect) -> tuple[str, ...]:
    """The three tables in ``dialect``'s types. Times are seconds since the epoch
    (PostgreSQL's ``REAL`` is 4 bytes: ``DOUBLE PRECISION`` there). PostgreSQL has no
    implicit ``rowid``: a column of that name numbers rows in insertion order, so that
    one query text orders ties the same way on both. Log lines refer to their build
    without a foreign key, as in SQLite, which does not enforce it."""
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    rowid = "" if dialect == "sqlite" else "rowid BIGINT GENERATED ALWAYS AS IDENTITY, "
    refs = " REFERENCES builds (id)" if dialect == "sqlite" else ""
    return (
        f"CREATE TABLE IF NOT EXISTS builds ({rowid}id TEXT PRIMARY KEY, repo TEXT NOT NULL, "
        "ref TEXT NOT NULL, ref_kind TEXT NOT NULL, sha TEXT NOT NULL, image TEXT NOT NULL, "
        "name TEXT NOT NULL, state TEXT NOT NULL, trigger TEXT NOT NULL, "
        f"created_at {real} NOT NULL, started_at {real}, finished_at {real}, error TEXT, "
        "error_remembered INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
        "supersedable INTEGER NOT NULL DEFAULT 1, pid BIGINT, requester TEXT)",
        "CREATE TABLE IF NOT EXISTS deliveries (provider TEXT NOT NULL, "
        f"delivery_id TEXT NOT NULL, received_at {real} NOT NULL, decision TEXT NOT NULL, "
        "PRIMARY KEY (provider, delivery_id))",
        f"CREATE TABLE IF NOT EXISTS build_logs (build_id TEXT NOT NULL{refs}, "
        "seq INTEGER NOT NULL, phase TEXT NOT NULL, message TEXT NOT NULL, "
        "builder INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (build_id, seq))",
    )


def _baseline(schema: Schema) -> None:
    for sql in _tables(schema.dialect):
        schema.execute(sql)
    # columns added to state files before steps were recorded
    if "builder" not in schema.columns("build_logs"):
        # the line came from the build's own output, not the service: a durable
        # executor that follows a build again skips that many
        schema.execute("ALTER TABLE build_logs ADD COLUMN builder INTEGER NOT NULL DEFAULT 0")
    if "requester" not in schema.columns("builds"):  # quotas (issue 16)
        schema.execute("ALTER TABLE builds ADD COLUMN requester TEXT")
    for sql in _INDEXES:
        schema.execute(sql)


def _image_deletions(schema: Schema) -> None:
    real = "REAL" if schema.dialect == "sqlite" else "DOUBLE PRECISION"
    schema.execute(
        "CREATE TABLE image_deletions (image TEXT NOT NULL, repository TEXT NOT NULL, "
        f"digest TEXT NOT NULL, deleted_at {real} NOT NULL, run_id TEXT NOT NULL)"
    )
    schema.execute("CREATE INDEX image_deletions_by_time ON image_deletions (deleted_at)")
    # the newest request of each image, cache hits included: retention keeps an image
    # requested within retention.keep_days
    schema.execute(
        f"CREATE TABLE image_requests (image TEXT PRIMARY KEY, last_requested_at {real} NOT NULL)"
    )


def _deletion_sizes(schema: Schema) -> None:
    # what deleting each manifest freed at most (the same on each of its tags' rows)
    schema.execute("ALTER TABLE image_deletions ADD COLUMN freed_bytes BIGINT")


def _build_provider(schema: Schema) -> None:
    # where a build's content comes from: git (every build before this step) or a
    # content provider's record (issue 25)
    schema.execute("ALTER TABLE builds ADD COLUMN provider TEXT NOT NULL DEFAULT 'git'")


STEPS: tuple[Step, ...] = (
    Step(1, "builds, build_logs and deliveries (the schema of unversioned state files)", _baseline),
    Step(
        2,
        "image_deletions and image_requests: what registry retention deleted, and the "
        "newest request of each image (issue 26)",
        _image_deletions,
    ),
    Step(
        3,
        "image_deletions.freed_bytes: what each deletion freed at most (issue 26)",
        _deletion_sizes,
    ),
    Step(
        4,
        "builds.provider: git, or the content provider of a record's build (issue 25)",
        _build_provider,
    ),
)


def migrate(
    schema: Schema, steps: Sequence[Step] = STEPS, *, clock: Callable[[], float] = time.time
) -> tuple[int, int]:
    """Apply the steps newer than ``schema``'s version, in order; returns the versions
    before and after. The caller holds the transaction and the database's write lock.
    Raises ``SchemaTooNew`` when the database's version is past the last step."""
    schema.execute(MIGRATIONS_TABLE)
    before = schema.version()
    newest = steps[-1].version if steps else 0
    if before > newest:
        raise SchemaTooNew(
            f"its schema is version {before}, newer than this binderhub-service knows "
            f"({newest}): run the version that migrated it, or a newer one"
        )
    for step in steps:
        if step.version > before:
            step.apply(schema)
            schema.record(step.version, step.description, clock())
    return before, max(before, newest)
