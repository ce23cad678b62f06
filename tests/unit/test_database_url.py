"""``database.url``: what it names, and the refusals that name the setting and the cause
without showing the password (jobs/settings/database.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.settings import ConfigError, load_settings
from jobs.settings.database import parse_database_url
from jobs.store import database_url, open_store


@pytest.mark.parametrize(
    ("url", "kind", "where", "shown"),
    [
        ("sqlite:///state.sqlite", "sqlite", "state.sqlite", "sqlite:///state.sqlite"),
        ("sqlite:////var/lib/b/s.sqlite", "sqlite", "/var/lib/b/s.sqlite", None),
        (
            "postgresql://bhs:p%40ss@db.example.org:5433/binder?sslmode=verify-full",
            "postgresql",
            "postgresql://bhs:p%40ss@db.example.org:5433/binder?sslmode=verify-full",
            "postgresql://bhs:***@db.example.org:5433/binder?sslmode=verify-full",
        ),
        ("postgres://bhs@db/binder", "postgresql", "postgresql://bhs@db/binder", None),
        (
            "postgresql+psycopg2://bhs:x@db/binder",
            "postgresql",
            "postgresql://bhs:x@db/binder",
            None,
        ),
    ],
)
def test_what_a_url_names(url: str, kind: str, where: str, shown: str | None) -> None:
    parsed = parse_database_url(url)
    assert parsed.kind == kind
    assert str(parsed.path if kind == "sqlite" else parsed.conninfo) == where
    if shown is not None:
        assert parsed.shown == shown
    assert "p%40ss" not in parsed.shown
    assert ":x@" not in parsed.shown


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secretpw@db/binder", "unsupported scheme 'mysql'"),
        ("db.example.org/binder", "does not parse"),
        ("postgresql://u:secretpw@db:port/binder", "does not parse"),
        (
            "postgresql://u:secretpw@db/binder?nosuch=1",
            'does not parse: invalid URI query parameter: "nosuch"',
        ),
        ("postgresql://u:secret%zzpw@db/binder", "does not parse: invalid percent-encoded token"),
        ("postgresql://u:secretpw@db/binder#x", "does not parse"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
    ],
)
def test_a_url_that_cannot_work_is_refused_naming_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, database={"url": url})
    text = str(refused.value)
    assert "database.url" in text
    assert message in text
    assert "secret" not in text


def test_the_url_is_masked_wherever_settings_are_shown() -> None:
    settings = load_settings(None, database={"url": "postgresql://u:secretpw@db/binder"})
    assert "secretpw" not in repr(settings)
    assert "secretpw" not in str(settings.database)


def test_without_a_url_the_store_is_the_state_file(tmp_path: Path) -> None:
    settings = load_settings(None, state_path=tmp_path / "s.sqlite")
    assert database_url(settings).kind == "sqlite"
    assert database_url(settings).path == tmp_path / "s.sqlite"
    open_store(settings).close()
    assert (tmp_path / "s.sqlite").exists()


def test_a_state_file_that_is_not_a_database_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "s.sqlite").write_text("not a database, " * 100)
    url = f"sqlite:///{tmp_path}/s.sqlite"
    with pytest.raises(
        ConfigError, match=r"^database\.url: .*s\.sqlite cannot be opened: file is not a database"
    ):
        open_store(load_settings(None, database={"url": url}))
