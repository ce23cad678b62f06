from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobs.model import Build, BuildState
from jobs.retention import BATCH, prune_old_logs
from jobs.store import Store, log_cut_marker

DAY = 86400.0


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
    store = Store(path)
    stored = [
        store.append_log("b1", "building", "x" * 100, builder=True, max_bytes=1000)
        for _ in range(20)
    ]
    assert stored[:10] == [(seq, "building", "x" * 100) for seq in range(10)]
    assert stored[10] == (10, "", log_cut_marker(1000))
    assert stored[11:] == [None] * 9
    store.forget_log_cursor("b1")
    store.close()

    store = Store(path)  # a restart: the cut is read back from the stored log
    assert store.append_log("b1", "", "the service restarted", max_bytes=1000) is None
    assert store.logs("b1")[-1] == ("", log_cut_marker(1000))
    assert len(store.logs("b1")) == 11
    assert store.count_logs("b1", builder=False) == 1  # the marker is the service's
    store.close()


@pytest.mark.anyio
async def test_retention_prunes_only_finished_builds_past_the_age(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
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
