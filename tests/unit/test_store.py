from __future__ import annotations

import sqlite3
from pathlib import Path

from jobs.store import Store


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def test_deliveries_are_bounded_and_the_newest_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    for i in range(1000):
        store.remember_delivery("github", f"d{i}", float(i), '{"outcome": "ignored"}', keep=100)
    assert store.delivery("github", "d999") == '{"outcome": "ignored"}'
    assert store.delivery("github", "d900") is not None
    assert store.delivery("github", "d0") is None
    store.close()
    assert 100 <= count(path, "deliveries") <= 110


def test_background_checkpoints_keep_every_write(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for i in range(500):
        store.append_log("b" * 32, "building", f"line {i}")
    store.close()
    # with auto-checkpoints off, the store's own thread checkpoints; at close nothing is lost
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert count(path, "build_logs") == 500
