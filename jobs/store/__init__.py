"""Where build records, their logs and webhook delivery records are kept (issue 27).

- ``base``: the interface every part of the pipeline uses (``Store``), and its errors;
- ``sql``: the SQL both implementations share (``SqlStore``);
- ``sqlite``: a SQLite file, the default (one host; the server and the CLI share it);
- ``postgres``: a PostgreSQL database that several replicas share (imported only when
  ``database.url`` names one; ``watchdog`` bounds its calls);
- ``migrations``: the schema as numbered steps, applied at start-up to either;
- ``retention``: old log lines deleted.

The ``database`` settings, and ``database.url`` read, are ``jobs.settings.database``.
"""

from __future__ import annotations

from ..settings import ConfigError, Settings
from ..settings.database import DatabaseUrl, parse_database_url
from .base import LOG_CUT_PREFIX, DuplicateActiveBuild, Store, StoreUnavailable, log_cut_marker
from .migrations import SchemaTooNew
from .sqlite import SqliteStore

__all__ = [
    "LOG_CUT_PREFIX",
    "DuplicateActiveBuild",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "database_url",
    "log_cut_marker",
    "open_store",
]


def database_url(settings: Settings) -> DatabaseUrl:
    """Where ``settings`` keep the store: ``database.url``, else the SQLite file
    ``state_path``."""
    if settings.database.url is None:
        return DatabaseUrl("sqlite", path=settings.state_path, shown=str(settings.state_path))
    return parse_database_url(settings.database.url.get_secret_value())


def open_store(settings: Settings, *, wait: float | None = None) -> Store:
    """The store ``settings`` name, its schema brought up to date. Raises
    ``ConfigError`` naming ``database.url`` (or ``state_path``) and the cause when it
    cannot be opened: refused credentials, a schema newer than this version, a
    database that cannot be reached within ``wait`` seconds (PostgreSQL)."""
    url = database_url(settings)
    setting = "state_path" if settings.database.url is None else "database.url"
    if url.kind == "sqlite":
        assert url.path is not None
        try:
            return SqliteStore(url.path)
        except (OSError, SchemaTooNew) as e:
            raise ConfigError(f"{setting}: {url.shown}: {e}") from None
        except Exception as e:  # sqlite3.Error: not a database, no access
            raise ConfigError(f"{setting}: {url.shown} cannot be opened: {e}") from None
    from .postgres import START_WAIT_SECONDS, open_postgres

    try:
        return open_postgres(
            url,
            timeout=settings.database.timeout,
            pool_size=settings.database.pool_size,
            wait=START_WAIT_SECONDS if wait is None else wait,
        )
    except SchemaTooNew as e:
        raise ConfigError(f"{setting}: {url.shown}: {e}") from None
