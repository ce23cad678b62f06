"""``database``: where the state is kept, and ``database.url`` read into what to open
(``jobs.store.open_store`` opens it). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator

from .base import Section

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")
"""``postgresql+psycopg2://`` is how JupyterHub's ``db_url`` is often written; the
driver part is ignored (the service uses psycopg 3)."""


@dataclass(frozen=True)
class DatabaseUrl:
    """Where the store is: a SQLite file (``path``) or a PostgreSQL database
    (``conninfo``, a ``postgresql://`` URI libpq reads)."""

    kind: Literal["sqlite", "postgresql"]
    path: Path | None = None
    conninfo: str | None = None
    shown: str = ""
    """The URL without its password, for messages and logs."""


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _hide(text: str, url: str) -> str:
    """``text`` (a parser's message) with the password of ``url`` (as written and
    decoded) replaced by ``***``."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        for spelling in {password, unquote(password)}:
            text = text.replace(spelling, "***")
    return text


def parse_database_url(url: str) -> DatabaseUrl:
    """Read ``database.url``. Raises ``ValueError`` with a message that names the
    problem and never the password: a URL that does not parse, an unsupported scheme,
    a SQLite URL without a file.

    ``sqlite:///relative/path`` and ``sqlite:////absolute/path`` name a SQLite file
    (the spelling of SQLAlchemy and JupyterHub's ``db_url``); ``postgresql://user:
    password@host:port/dbname?param=value`` a PostgreSQL database, with libpq's
    parameters (``sslmode``, ``sslrootcert``, ...; libpq's own documentation)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("does not parse: a URL such as postgresql://USER@HOST/DB is needed")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ValueError("sqlite:///PATH needs a file (sqlite:////absolute/path)")
        return DatabaseUrl("sqlite", path=Path(rest[1:]), shown=url)
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"unsupported scheme {scheme!r}: use postgresql://USER:PASSWORD@HOST:PORT/DB "
            "or sqlite:///PATH"
        )
    conninfo = "postgresql://" + rest
    try:
        parts = urlsplit(conninfo)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as e:
        raise ValueError(f"does not parse: {_hide(str(e), conninfo)}") from None
    if parts.fragment:
        raise ValueError("does not parse: a URL with a #fragment")
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(conninfo)
    except ProgrammingError as e:
        raise ValueError(f"does not parse: {_hide(str(e).strip(), conninfo)}") from None
    return DatabaseUrl("postgresql", conninfo=conninfo, shown=_without_password(conninfo))


class DatabaseSettings(Section):
    url: SecretStr | None = None
    """Where build records, their logs, failure memory, quota counts and webhook
    delivery records are kept. Default: the SQLite file ``state_path``.
    ``sqlite:///relative/path`` or ``sqlite:////absolute/path``: another SQLite file
    (one host only). ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (libpq's
    parameters such as ``?sslmode=verify-full`` may follow): a PostgreSQL database,
    which several replicas share. Its schema is created or brought up to date at
    start-up. The service refuses to start, naming this setting, when the URL does
    not parse, names another scheme, or the database refuses the credentials."""

    timeout: float = Field(default=5.0, gt=0, le=60)
    """PostgreSQL: seconds a connection attempt, a statement or a transaction may take
    (the server's ``statement_timeout``, and a watchdog for a server that does not
    answer at all). Past it the request is answered 503 with ``Retry-After`` and the
    database is asked again in the background; requests fail at once until it answers."""

    pool_size: int = Field(default=4, ge=2, le=64)
    """PostgreSQL: connections each process keeps at most."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_database_url(value.get_secret_value())
        return value
