"""The store in a PostgreSQL database, shared by several replicas (issue 27).

The driver is psycopg 3 with its connection pool (psycopg_pool): the maintained
PostgreSQL driver for Python, typed, with server-side parameters and prepared
statements, and a pool that replaces broken connections in the background.

The pipeline calls the store synchronously from the event loop (its decisions must
not interleave with other requests'), so a database that does not answer must not
hold the loop. Three bounds, all ``database.timeout`` (T):
- libpq's ``connect_timeout``, and the server's ``statement_timeout`` and
  ``lock_timeout`` (a lock another replica holds, a slow statement);
- a watchdog thread that shuts down the socket of a call still waiting after T
  (a server that accepts connections but does not answer: stopped, or a network that
  drops packets), so the call fails instead of waiting for TCP to give up;
- a breaker: once a connection broke, every call fails at once with
  ``StoreUnavailable`` (503, ``Retry-After``) while a thread of the store's own asks
  the database again every ``PROBE_SECONDS``; when it answers, calls go through again.
  No restart is needed, and the loop waits at most T once per outage.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
import psycopg_pool

from ..errors import TemporaryError
from ..settings import ConfigError
from ..settings.database import DatabaseUrl
from .base import DuplicateActiveBuild, StoreUnavailable
from .migrations import STEPS, Dialect, SchemaTooNew, Step, migrate
from .sql import LogConflict, SqlStore
from .watchdog import Watchdog

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.0
"""How often a database that stopped answering is asked again."""
START_WAIT_SECONDS = 60.0
"""How long start-up waits for a database that cannot be reached (a database started
beside the service, in the same ``helm install``, may take that long)."""
SCHEMA_LOCK = 0x62687323  # pg_advisory_xact_lock key of the schema migration
_REFUSED = re.compile(
    r"authentication failed|does not exist|no pg_hba\.conf entry|not permitted to log in|"
    r"permission denied|certificate|SSL"
)
"""What a server says when it answered and refused us: settings must change."""


class _Local(threading.local):
    conn: psycopg.Connection[Any] | None = None
    """The connection of the transaction this thread has open."""


class PostgresStore(SqlStore):
    """The store in the PostgreSQL database ``url`` names; see the module docstring.
    Use ``open_postgres`` to make one (it checks the settings and migrates)."""

    shared = True

    PRUNE_DELIVERIES = (
        "DELETE FROM deliveries WHERE (provider, delivery_id) IN (SELECT provider, "
        "delivery_id FROM deliveries ORDER BY received_at DESC OFFSET ?)"
    )
    PRUNE_LOGS = (
        "DELETE FROM build_logs WHERE (build_id, seq) IN ("
        "SELECT l.build_id, l.seq FROM builds b JOIN build_logs l ON l.build_id = b.id "
        "WHERE b.finished_at < ? AND b.state NOT IN ('queued', 'running') LIMIT ?)"
    )
    MESSAGE_BYTES = "octet_length(message)"

    def __init__(self, url: DatabaseUrl, *, timeout: float, pool_size: int) -> None:
        super().__init__()
        assert url.conninfo is not None
        self.description = f"the database {url.shown}"
        self._timeout = timeout
        self._local = _Local()
        self._sql: dict[str, str] = {}
        self._down: str | None = None  # why, while the breaker is open
        self._down_lock = threading.Lock()
        self._closing = threading.Event()
        self._prober: threading.Thread | None = None
        self._watchdog = Watchdog()
        self._pool = psycopg_pool.ConnectionPool(
            url.conninfo,
            kwargs=connection_options(timeout),
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout,
            name="binderhub-service",
        )

    def open(self) -> None:
        """Fill the pool (raises ``psycopg_pool.PoolTimeout``)."""
        self._pool.open(wait=True, timeout=self._timeout)

    def close(self) -> None:
        self._closing.set()
        if self._prober is not None:
            self._prober.join()
        self._pool.close(timeout=self._timeout)
        self._watchdog.stop()

    def check(self) -> None:
        try:
            self._rows("SELECT 1 FROM builds LIMIT 1")
        except StoreUnavailable as e:
            raise TemporaryError(f"{self.description} cannot be read: {e}") from e

    # -- the primitives ----------------------------------------------------------

    def _query(self, sql: str) -> str:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("?", "%s")
        return text

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return list(conn.execute(self._query(sql), params).fetchall())

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._execute(sql, params, lambda cursor: cursor.rowcount))

    def _insert_returning(self, sql: str, params: Sequence[Any]) -> Any:
        return self._execute(sql, params, lambda cursor: cursor.fetchone()[0])  # type: ignore[index]

    def _execute(
        self, sql: str, params: Sequence[Any], result: Callable[[psycopg.Cursor[Any]], Any]
    ) -> Any:
        try:
            with self._connection() as conn:
                if self._local.conn is not None and sql.startswith("INSERT INTO build_logs"):
                    # a refused line must not abort the transaction around it (builds'
                    # inserts have a savepoint of their own: ``create``)
                    with conn.transaction():
                        return result(conn.execute(self._query(sql), params))
                return result(conn.execute(self._query(sql), params))
        except psycopg.errors.UniqueViolation as e:
            if sql.startswith("INSERT INTO builds"):
                raise DuplicateActiveBuild(str(params[5])) from e
            if sql.startswith("INSERT INTO build_logs"):
                raise LogConflict(str(params[0])) from e
            raise

    def _in_transaction(self) -> bool:
        return self._local.conn is not None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._local.conn
        if conn is not None:  # nested: a savepoint
            with conn.transaction():
                yield
            return
        with self._connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The thread's transaction's connection, or one from the pool for the block,
        watched for ``timeout``; errors of the database's reach become
        ``StoreUnavailable`` (and open the breaker when the connection broke)."""
        if self._local.conn is not None:
            yield self._local.conn  # watched as a part of its transaction
            return
        if self._down is not None:
            raise StoreUnavailable(f"{self.description} cannot be reached: {self._down}")
        conn: psycopg.Connection[Any] | None = None
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                try:
                    with self._watchdog.watch(conn, self._timeout):
                        yield conn
                except BaseException as e:
                    if self._watchdog.took(conn):
                        conn.close()  # its socket is gone: the pool drops it
                        self._trip(f"no answer within {self._timeout:g} s")
                        raise StoreUnavailable(
                            f"{self.description} did not answer within {self._timeout:g} s"
                        ) from e
                    raise
                if self._watchdog.took(conn):  # answered as the deadline passed
                    conn.close()
        except psycopg_pool.PoolTimeout as e:
            self._trip(f"no connection within {self._timeout:g} s")
            raise StoreUnavailable(f"{self.description} cannot be reached: {e}") from e
        except (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.DataError):
            raise  # the statement's fault, not the database's reach
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            if conn is None or conn.broken or conn.closed:
                self._trip(_first_line(e))
            raise StoreUnavailable(f"{self.description}: {_first_line(e)}") from e

    # -- the breaker -------------------------------------------------------------

    def _trip(self, why: str) -> None:
        with self._down_lock:
            if self._down is not None or self._closing.is_set():
                return
            self._down = why
            log.warning(
                "%s stopped answering (%s); asking it again every %g s",
                self.description,
                why,
                PROBE_SECONDS,
            )
            self._prober = threading.Thread(target=self._probe, name="postgres-probe", daemon=True)
            self._prober.start()

    def _probe(self) -> None:
        while not self._closing.wait(PROBE_SECONDS):
            try:
                with self._pool.connection(timeout=self._timeout) as conn:
                    try:
                        with self._watchdog.watch(conn, self._timeout):
                            conn.execute("SELECT 1 FROM builds LIMIT 1").fetchall()
                    finally:
                        if self._watchdog.took(conn):
                            conn.close()
            except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
                self._down = _first_line(e)
                continue
            self._pool.check()  # drop the other connections the outage broke
            with self._down_lock:
                self._down = None
            log.warning("%s answers again", self.description)
            return


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connection_options(timeout: float) -> dict[str, Any]:
    """libpq parameters of every connection: autocommit (the store opens transactions
    itself), the bounds of the module docstring, and keepalives that notice a peer
    gone from the network."""
    milliseconds = int(timeout * 1000)
    return {
        "autocommit": True,
        "connect_timeout": max(int(timeout), 2),
        "application_name": "binderhub-service",
        "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds} "
        f"-c idle_in_transaction_session_timeout={max(milliseconds * 6, 60000)}",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": milliseconds * 2,
    }


class _PostgresSchema:
    """``jobs.store.migrations.Schema`` on a connection in a transaction."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str) -> None:
        self._conn.execute(sql)  # our own statements

    def columns(self, table: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
        return {str(row[0]) for row in rows}

    def version(self) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ).fetchone()
        return int(row[0]) if row else 0

    def record(self, version: int, description: str, at: float) -> None:
        self._conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s)",
            (version, description, at),
        )


def open_postgres(
    url: DatabaseUrl,
    *,
    timeout: float,
    pool_size: int,
    wait: float = START_WAIT_SECONDS,
    setting: str = "database.url",
    steps: Sequence[Step] = STEPS,
) -> PostgresStore:
    """Connect, bring the schema up to date, and return the store.

    Raises ``ConfigError`` naming ``setting`` and the cause when the server refuses
    us (credentials, a database that does not exist, TLS), when its schema is newer
    than this version knows, or when it cannot be reached within ``wait`` seconds."""
    assert url.conninfo is not None
    options = connection_options(timeout)
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = psycopg.connect(url.conninfo, **options)
            break
        except psycopg.OperationalError as e:
            cause = _first_line(e).replace("connection failed: ", "")
            if _REFUSED.search(str(e)):
                raise ConfigError(
                    f"{setting}: {url.shown} refused the connection: {cause}"
                ) from None
            if time.monotonic() > deadline:
                raise ConfigError(f"{setting}: {url.shown} cannot be reached: {cause}") from None
            log.warning("%s cannot be reached (%s); trying again", url.shown, cause)
            time.sleep(1.0)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            before, after = migrate(_PostgresSchema(conn), steps)
    except SchemaTooNew:
        raise
    except Exception as e:
        raise ConfigError(f"{setting}: {url.shown}: {_first_line(e)}") from None
    finally:
        conn.close()
    if before != after:
        log.info("the schema of %s went from version %d to %d", url.shown, before, after)
    store = PostgresStore(url, timeout=timeout, pool_size=pool_size)
    store.open()
    return store
