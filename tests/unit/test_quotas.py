"""Quotas (issue 16): the policy (pure), and the two counters it is fed by."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobs.coordinator.quotas import (
    QUEUED_RETRY_SECONDS,
    ClusterCounter,
    Quotas,
    StoreCounter,
    Usage,
    check_quota,
    statuses,
)
from jobs.errors import QuotaExceeded
from jobs.model import Build, BuildState, CountedBuild
from jobs.settings import QuotaLimits, QuotaSettings
from jobs.store import SqliteStore

NOW = 1_000_000.0
LIMITS = QuotaLimits(builds_per_window=3, window=600, max_queued=2)


def refusal(usage: Usage, limits: QuotaLimits = LIMITS) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as caught:
        check_quota("per_user", "user:ann", limits, usage, NOW)
    return caught.value


def test_under_every_quota_is_allowed() -> None:
    check_quota("per_user", "user:ann", LIMITS, Usage((NOW - 10, NOW - 5), 1), NOW)


def test_off_quotas_allow_anything() -> None:
    check_quota("per_user", "user:ann", QuotaLimits(), Usage((NOW,) * 1000, 1000), NOW)


def test_a_full_window_frees_when_its_oldest_counted_build_ages_out() -> None:
    # four in the window against a limit of three: the second-oldest must age out too
    e = refusal(Usage((NOW - 500, NOW - 400, NOW - 100, NOW - 1), 0))
    assert (e.quota, e.frees_at, e.retry_after) == ("per_user.builds_per_window", NOW + 200, 200)
    assert "user:ann started 4 builds in the last 600 s" in str(e)
    assert "quotas.per_user.builds_per_window" in str(e)


def test_builds_older_than_the_window_do_not_count() -> None:
    check_quota("per_user", "u", LIMITS, Usage((NOW - 600, NOW - 700, NOW - 1), 0), NOW)


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    e = refusal(Usage((NOW - 599.5, NOW - 2, NOW - 1), 0))
    assert (e.retry_after, e.frees_at) == (1, NOW + 0.5)


def test_too_many_queued_frees_when_a_build_finishes() -> None:
    e = refusal(Usage((NOW - 1,), 2))
    assert (e.quota, e.frees_at, e.retry_after) == (
        "per_user.max_queued",
        None,
        QUEUED_RETRY_SECONDS,
    )


def test_the_window_is_named_first_when_both_are_used_up() -> None:
    assert refusal(Usage((NOW - 3, NOW - 2, NOW - 1), 5)).quota == "per_user.builds_per_window"


def test_statuses_show_what_is_used_and_when_it_frees() -> None:
    found = [
        q.to_json() for q in statuses("per_user", LIMITS, Usage((NOW - 700, NOW - 60), 1), NOW)
    ]
    assert found == [
        {
            "quota": "per_user.builds_per_window",
            "limit": 3,
            "used": 1,
            "remaining": 2,
            "frees_at": NOW + 540,
        },
        {"quota": "per_user.max_queued", "limit": 2, "used": 1, "remaining": 1, "frees_at": None},
    ]
    assert statuses("per_user", QuotaLimits(), Usage((), 0), NOW) == []


# -- counters ---------------------------------------------------------------------


def build(
    n: int,
    *,
    requester: str | None = "user:ann",
    repo: str = "https://example.org/r",
    state: BuildState = BuildState.QUEUED,
    created_at: float = NOW - 10,
    started: bool = False,
) -> Build:
    return Build(
        id=f"{n:032x}",
        repo=repo,
        ref="main",
        ref_kind="branch",
        sha=f"{n:040x}",
        image=f"registry.example.org/r:{n:040x}",
        name=f"build-{n}",
        state=state,
        trigger="api",
        created_at=created_at,
        started_at=created_at + 1 if started else None,
        requester=requester,
    )


SCENARIO = [
    build(1),  # queued: counts, active
    build(2, state=BuildState.RUNNING, started=True),  # active
    build(3, state=BuildState.BUILT, started=True),  # counts
    build(4, state=BuildState.FAILED, started=True),  # counts
    build(5, state=BuildState.CANCELLED),  # cancelled before it started: free
    build(6, state=BuildState.CANCELLED, started=True),  # cancelled while running: counts
    build(7, state=BuildState.SUPERSEDED),  # free
    build(8, state=BuildState.BUILT, started=True, created_at=NOW - 4000),  # too old
    build(9, requester="user:bob"),  # someone else's
    build(10, requester=None),  # a webhook's: nobody's
    build(11, repo="https://example.org/other"),  # ann's, another repo
]
EXPECTED_ANN = Usage((NOW - 10,) * 6, 3)
EXPECTED_REPO = Usage((NOW - 10,) * 6, 3)  # bob's counts, ann's other repo does not


def test_the_store_counts_what_the_policy_says(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    for b in SCENARIO:
        store.create(b)
    counter = StoreCounter(store)
    ann = counter.usage(requester="user:ann", repo=None, since=NOW - 3600, pending=())
    repo = counter.usage(requester=None, repo="https://example.org/r", since=NOW - 3600, pending=())
    assert (ann, repo) == (EXPECTED_ANN, EXPECTED_REPO)
    store.close()


def test_the_cluster_counts_jobs_and_pending_builds_alike() -> None:
    # Jobs of cancelled and superseded builds are deleted: the cluster never has them
    in_cluster = [b for b in SCENARIO if b.id not in (build(5).id, build(7).id, build(1).id)]
    pending = [build(1), build(5, state=BuildState.QUEUED)]  # 1 and 5 have no Job yet
    jobs = [
        CountedBuild(b.id, b.requester, b.repo, b.created_at, not b.state.finished)
        for b in in_cluster
    ]
    counter = ClusterCounter(lambda: jobs)
    ann = counter.usage(requester="user:ann", repo=None, since=NOW - 3600, pending=pending)
    # build 5 is pending (not yet cancelled) here, so it counts once more
    assert ann == Usage((NOW - 10,) * 7, 4)
    pending = [build(1)]
    ann = counter.usage(requester="user:ann", repo=None, since=NOW - 3600, pending=pending)
    assert ann == EXPECTED_ANN


def test_a_state_file_from_before_quotas_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE builds (id TEXT PRIMARY KEY, repo TEXT NOT NULL, ref TEXT NOT NULL, "
            "ref_kind TEXT NOT NULL, sha TEXT NOT NULL, image TEXT NOT NULL, name TEXT NOT NULL,"
            " state TEXT NOT NULL, trigger TEXT NOT NULL, created_at REAL NOT NULL, "
            "started_at REAL, finished_at REAL, error TEXT, error_remembered INTEGER NOT NULL "
            "DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, supersedable INTEGER NOT NULL "
            "DEFAULT 1, pid INTEGER)"
        )
        db.execute(
            "INSERT INTO builds (id, repo, ref, ref_kind, sha, image, name, state, trigger, "
            "created_at) VALUES ('a', 'r', 'main', 'branch', 's', 'i', 'n', 'built', 'api', 1)"
        )
    store = SqliteStore(path)
    old = store.get("a")
    assert old is not None
    assert old.requester is None
    store.create(build(1))
    assert store.quota_usage(requester="user:ann", since=0) == ([NOW - 10], 1)
    store.close()


def test_quotas_check_both_scopes_and_only_what_is_on(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    for b in SCENARIO:
        store.create(b)
    per_repo = QuotaSettings(per_repo=QuotaLimits(max_queued=3))
    with pytest.raises(QuotaExceeded) as caught:
        Quotas(per_repo, StoreCounter(store)).check("user:new", "https://example.org/r", NOW, ())
    assert caught.value.quota == "per_repo.max_queued"
    Quotas(per_repo, StoreCounter(store)).check("user:ann", "https://example.org/new", NOW, ())
    Quotas(QuotaSettings(), StoreCounter(store)).check("user:ann", "https://example.org/r", NOW, ())
    assert Quotas(per_repo, StoreCounter(store)).status("user:ann", NOW, ()) == []
    store.close()
