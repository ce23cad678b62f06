from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobs.model import Build, BuildState
from jobs.store import DuplicateActiveBuild, SqliteStore, log_cut_marker
from jobs.store.retention import BATCH, prune_old_logs

DAY = 86400.0


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def test_deliveries_are_bounded_and_the_newest_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path)
    for i in range(1000):
        store.remember_delivery("github", f"d{i}", float(i), '{"outcome": "ignored"}', keep=100)
    assert store.delivery("github", "d999") == '{"outcome": "ignored"}'
    assert store.delivery("github", "d900") is not None
    assert store.delivery("github", "d0") is None
    store.close()
    assert 100 <= count(path, "deliveries") <= 110


def test_background_checkpoints_keep_every_write(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for i in range(500):
        store.append_log("b" * 32, "building", f"line {i}")
    store.close()
    # with auto-checkpoints off, the store's own thread checkpoints; at close nothing is lost
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert count(path, "build_logs") == 500


def make_build(build_id: str, state: BuildState, finished_at: float | None) -> Build:
    return Build(
        id=build_id,
        repo="https://example.org/r",
        ref="main",
        ref_kind="branch",
        sha="0" * 40,
        image=f"127.0.0.1:5000/binder-r:{build_id}",
        name=f"r2d-{build_id}",
        state=state,
        trigger="api",
        created_at=0.0,
        finished_at=finished_at,
    )


def test_a_build_log_stops_at_its_cap_with_one_marker(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path)
    stored = [
        store.append_log("b1", "building", "x" * 100, builder=True, max_bytes=1000)
        for _ in range(20)
    ]
    assert stored[:10] == [(seq, "building", "x" * 100) for seq in range(10)]
    assert stored[10] == (10, "", log_cut_marker(1000))
    assert stored[11:] == [None] * 9
    store.forget_log_cursor("b1")
    store.close()

    store = SqliteStore(path)  # a restart: the cut is read back from the stored log
    assert store.append_log("b1", "", "the service restarted", max_bytes=1000) is None
    assert store.logs("b1")[-1] == ("", log_cut_marker(1000))
    assert len(store.logs("b1")) == 11
    assert store.count_logs("b1", builder=False) == 1  # the marker is the service's
    store.close()


@pytest.mark.anyio
async def test_retention_prunes_only_finished_builds_past_the_age(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    now = 100 * DAY
    builds = {
        "old": make_build("old", BuildState.FAILED, now - 31 * DAY),
        "old-built": make_build("old-built", BuildState.BUILT, now - 40 * DAY),
        "recent": make_build("recent", BuildState.BUILT, now - 29 * DAY),
        "running": make_build("running", BuildState.RUNNING, None),
        "queued": make_build("queued", BuildState.QUEUED, None),
    }
    for build in builds.values():
        store.create(build)
        for i in range(BATCH + 5):  # more than one batch each
            store.append_log(build.id, "building", f"line {i}")

    deleted = await prune_old_logs(store, 30, clock=lambda: now)

    assert deleted == 2 * (BATCH + 5)
    assert store.logs("old") == store.logs("old-built") == []
    for kept in ("recent", "running", "queued"):
        assert len(store.logs(kept)) == BATCH + 5
    assert store.get("old") is not None  # the record stays
    assert await prune_old_logs(store, 30, clock=lambda: now) == 0
    assert await prune_old_logs(store, 0, clock=lambda: 1000 * DAY) == 0  # 0: keep forever
    assert len(store.logs("recent")) == BATCH + 5
    store.close()


def queued(build_id: str, image: str) -> Build:
    return Build(
        id=build_id,
        repo="https://github.com/org/repo",
        ref="main",
        ref_kind="branch",
        sha="a" * 40,
        image=image,
        name="r2d-x",
        state=BuildState.QUEUED,
        trigger="github",
        created_at=1.0,
    )


def test_a_transaction_commits_its_writes_together_or_none(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path)

    def write_and_fail() -> None:
        with store.transaction():
            store.create(queued("1" * 32, "img:1"))
            store.remember_delivery("github", "d1", 1.0, "{}", keep=100)
            raise RuntimeError("the answer could not be written")

    with pytest.raises(RuntimeError):
        write_and_fail()
    assert store.get("1" * 32) is None
    assert store.delivery("github", "d1") is None
    with store.transaction():
        store.create(queued("2" * 32, "img:2"))
        store.remember_delivery("github", "d2", 1.0, "{}", keep=100)
        assert count(path, "builds") == 0  # another connection sees nothing before the end
    assert store.get("2" * 32) is not None
    assert store.delivery("github", "d2") == "{}"
    store.close()


def test_a_failed_write_inside_a_transaction_undoes_only_its_own_part(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    first, older = queued("1" * 32, "img:1"), queued("9" * 32, "img:9")
    with store.transaction():
        store.create(first)
        store.create(older)
        # first's image: refused by the one-active-build index, and its supersede undone
        with pytest.raises(DuplicateActiveBuild):
            store.create(queued("2" * 32, "img:1"), supersede=[older.id])
        store.remember_delivery("github", "d1", 1.0, "{}", keep=100)
    for build in (first, older):
        stored = store.get(build.id)
        assert stored is not None
        assert stored.state is BuildState.QUEUED
    assert store.delivery("github", "d1") == "{}"
    store.close()
