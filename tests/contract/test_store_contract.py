"""The contract of ``jobs.store.Store``, kept by ``SqliteStore`` (a file) and by
``PostgresStore`` against a real PostgreSQL (``scripts/ensure-postgres.sh``): records,
pages, one active build per image across processes, transactions that commit all or
nothing, delivery records that keep the first answer, logs with their cap, retention
and the schema's migrations. Two stores opened on one database stand for two
processes (the CLI and a server, or two replicas)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from jobs.model import Build, BuildState, DeletionTotals, ImageDeletion
from jobs.settings.database import parse_database_url
from jobs.store import DuplicateActiveBuild, SqliteStore, Store, log_cut_marker
from jobs.store.migrations import STEPS, Schema, SchemaTooNew, Step

Opener = Callable[[], Store]

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(kind, where): a SQLite file's path or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "state.sqlite")
        return
    server = request.getfixturevalue("postgres_log")
    yield "postgresql", server.create_database()


def open_backend(kind: str, where: str, *, steps: Sequence[Step] = STEPS) -> Store:
    if kind == "sqlite":
        return SqliteStore(where, steps=steps)
    from jobs.store.postgres import open_postgres

    url = parse_database_url(where)
    return open_postgres(url, timeout=5, pool_size=4, wait=10, steps=steps)


@pytest.fixture
def opener(backend: tuple[str, str]) -> Iterator[Opener]:
    """Opens another store on the test's database (another process, as it were)."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_backend(*backend))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


def build(
    n: int, *, image: str | None = None, state: BuildState = BuildState.QUEUED, **fields: object
) -> Build:
    values: dict[str, object] = {
        "id": f"{n:032x}",
        "repo": "https://example.org/r",
        "ref": "main",
        "ref_kind": "branch",
        "sha": f"{n:040x}",
        "image": image or f"registry.test/r:{n:040x}",
        "name": f"r2d-{n}",
        "state": state,
        "trigger": "api",
        "created_at": 1000.0 + n,
        **fields,
    }
    return Build(**values)  # type: ignore[arg-type]


def test_a_build_is_stored_as_given_and_read_back(store: Store) -> None:
    made = build(1, requester="alice", pid=4242, supersedable=False)
    store.create(made)
    assert store.get(made.id) == made
    assert store.get("0" * 32) is None
    store.update(made.id, state=BuildState.RUNNING, started_at=1001.5, attempts=1)
    again = store.get(made.id)
    assert again is not None
    assert (again.state, again.started_at, again.attempts) == (BuildState.RUNNING, 1001.5, 1)
    assert store.latest_for_image(made.image) == again
    assert [b.id for b in store.active()] == [made.id]


def test_pages_are_newest_first_and_ties_keep_the_order_of_insertion(store: Store) -> None:
    builds = [build(n, created_at=5.0) for n in range(1, 6)]  # one instant for all
    for made in builds:
        store.create(made)
    ids = [b.id for b in builds]
    first = store.recent(limit=2)
    assert [b.id for b in first] == ids[::-1][:2]
    rest = store.recent(limit=10, before=first[-1].id)
    assert [b.id for b in rest] == ids[::-1][2:]
    assert [b.id for b in store.active()] == ids  # oldest first
    assert store.recent(state="built") == []
    assert [b.id for b in store.recent(repo="https://example.org/r", limit=1)] == [ids[-1]]


def test_one_image_has_one_active_build_and_a_refused_one_changes_nothing(store: Store) -> None:
    first, older = build(1, image="registry.test/same:1"), build(2)
    store.create(first)
    store.create(older)
    with pytest.raises(DuplicateActiveBuild):
        store.create(build(3, image="registry.test/same:1"), supersede=[older.id])
    assert store.get(build(3).id) is None
    stored = store.get(older.id)
    assert stored is not None
    assert stored.state is BuildState.QUEUED  # its supersede was undone too
    store.update(first.id, state=BuildState.BUILT, finished_at=2000.0)
    store.create(build(3, image="registry.test/same:1"))  # finished: a new one may start
    assert [b.id for b in store.built_images()] == [first.id]


def test_racing_processes_record_one_build_of_an_image(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    start = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def race(n: int, store: Store) -> None:
        start.wait()
        try:
            store.create(build(n, image="registry.test/race:1"))
            outcomes.append("created")
        except DuplicateActiveBuild:
            outcomes.append("refused")

    threads = [threading.Thread(target=race, args=(n, s)) for n, s in enumerate(stores, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
    assert len(stores[0].active()) == 1


def test_a_transaction_commits_its_writes_together_or_none(opener: Opener) -> None:
    store, other = opener(), opener()

    def write_and_fail() -> None:
        with store.transaction():
            store.create(build(1))
            store.remember_delivery("github", "d1", 1.0, "{}", keep=100)
            raise RuntimeError("the answer could not be written")

    with pytest.raises(RuntimeError):
        write_and_fail()
    assert store.get(build(1).id) is None
    assert store.delivery("github", "d1") is None
    with store.transaction():
        store.create(build(2))
        store.remember_delivery("github", "d2", 1.0, "{}", keep=100)
        assert other.get(build(2).id) is None  # another process sees nothing before the end
    assert other.get(build(2).id) is not None
    assert other.delivery("github", "d2") == "{}"


def test_a_delivery_keeps_its_first_answer(opener: Opener) -> None:
    store, other = opener(), opener()
    assert store.remember_delivery("github", "d1", 1.0, '{"n": 1}', keep=100) is True
    assert other.remember_delivery("github", "d1", 2.0, '{"n": 2}', keep=100) is False
    assert other.delivery("github", "d1") == '{"n": 1}'
    assert other.delivery("gitlab", "d1") is None


def test_deliveries_are_bounded_and_the_newest_kept(store: Store) -> None:
    for i in range(300):
        store.remember_delivery("github", f"d{i}", float(i), "{}", keep=50)
    assert store.delivery("github", "d299") == "{}"
    assert store.delivery("github", "d250") is not None
    assert store.delivery("github", "d0") is None
    kept = sum(store.delivery("github", f"d{i}") is not None for i in range(300))
    assert 50 <= kept <= 55


def test_a_log_keeps_its_lines_and_stops_at_its_cap(opener: Opener) -> None:
    store = opener()
    stored = [
        store.append_log("b1", "building", "é" * 50, builder=True, max_bytes=1000)  # 100 bytes
        for _ in range(20)
    ]
    assert stored[:10] == [(seq, "building", "é" * 50) for seq in range(10)]
    assert stored[10] == (10, "", log_cut_marker(1000))
    assert stored[11:] == [None] * 9
    restarted = opener()  # the cut is read back from the stored log
    assert restarted.append_log("b1", "", "the service restarted", max_bytes=1000) is None
    assert len(restarted.logs("b1")) == 11
    assert restarted.logs("b1", after=8) == [("building", "é" * 50), ("", log_cut_marker(1000))]
    assert restarted.count_logs("b1", builder=True) == 10
    assert restarted.count_logs("b1", builder=False) == 1


def test_two_processes_writing_one_log_lose_no_line(opener: Opener) -> None:
    stores = [opener(), opener()]
    for store in stores:
        store.append_log("b1", "", "first")  # both know the log now

    def write(n: int, store: Store) -> None:
        for i in range(50):
            store.append_log("b1", "building", f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = [message for _, message in stores[0].logs("b1")]
    assert len(lines) == 102
    assert sorted(lines) == sorted(
        ["first", "first"] + [f"{n}-{i}" for n in (0, 1) for i in range(50)]
    )


def test_retention_deletes_only_old_finished_logs(store: Store) -> None:
    old = build(1, state=BuildState.FAILED, finished_at=10.0)
    recent = build(2, state=BuildState.BUILT, finished_at=100.0)
    running = build(3, state=BuildState.RUNNING)
    for made in (old, recent, running):
        store.create(made)
        for i in range(7):
            store.append_log(made.id, "building", f"line {i}")
    assert store.prune_logs(50.0, batch=5) == 5
    assert store.prune_logs(50.0, batch=5) == 2
    assert store.prune_logs(50.0, batch=5) == 0
    assert store.logs(old.id) == []
    assert len(store.logs(recent.id)) == len(store.logs(running.id)) == 7
    assert store.get(old.id) is not None


def test_quota_usage_counts_requested_builds(store: Store) -> None:
    store.create(build(1, requester="alice", created_at=10.0))
    store.create(build(2, requester="alice", created_at=20.0, state=BuildState.BUILT))
    store.create(build(3, requester="alice", created_at=30.0, state=BuildState.CANCELLED))
    store.create(build(4, requester="bob", created_at=40.0))
    store.create(build(5, created_at=50.0))  # a push: nobody asked by name
    assert store.quota_usage(requester="alice", since=5.0) == ([10.0, 20.0], 1)
    assert store.quota_usage(requester="alice", since=15.0) == ([20.0], 1)
    assert store.quota_usage(repo="https://example.org/r", since=0.0) == ([10.0, 20.0, 40.0], 2)


def add_column(schema: Schema) -> None:
    schema.execute("ALTER TABLE builds ADD COLUMN note TEXT")
    schema.execute("UPDATE builds SET note = 'from step 2'")


def test_a_new_step_upgrades_a_database_in_place(backend: tuple[str, str]) -> None:
    store = open_backend(*backend)
    store.create(build(1))
    store.append_log(build(1).id, "", "kept")
    store.close()
    later = (*STEPS, Step(STEPS[-1].version + 1, "a note on each build", add_column))
    upgraded = open_backend(*backend, steps=later)
    try:
        assert upgraded.get(build(1).id) == build(1)
        assert upgraded.logs(build(1).id) == [("", "kept")]
        upgraded.create(build(2))
    finally:
        upgraded.close()
    # this version, which lacks the step, refuses the newer schema and names both versions
    with pytest.raises(SchemaTooNew, match=rf"version {len(later)}, newer .* \({len(STEPS)}\)"):
        open_backend(*backend)


def test_builds_keep_their_provider_and_those_stored_before_it_are_git(
    backend: tuple[str, str],
) -> None:
    before = open_backend(*backend, steps=STEPS[:2])  # a database without builds.provider
    old = build(1)
    try:
        before._write(  # type: ignore[attr-defined]  # the columns of that version
            "INSERT INTO builds (id, repo, ref, ref_kind, sha, image, name, state, trigger, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                old.id,
                old.repo,
                old.ref,
                old.ref_kind,
                old.sha,
                old.image,
                old.name,
                "queued",
                old.trigger,
                old.created_at,
            ),
        )
    finally:
        before.close()
    store = open_backend(*backend)
    try:
        assert store.get(old.id) == old
        assert old.provider == "git"
        record = build(
            2,
            repo="https://zenodo.org/records/3242074",
            ref="latest",
            ref_kind="other",
            sha="3242081",
            image="registry.test/zenodo-zenodo-org-3242074-0123abcd:3242081",
            provider="zenodo",
        )
        store.create(record)
        assert store.get(record.id) == record
        assert [b.provider for b in store.recent(limit=5)] == ["zenodo", "git"]
    finally:
        store.close()


def broken(schema: Schema) -> None:
    schema.execute("ALTER TABLE builds ADD COLUMN half TEXT")
    schema.execute("THIS IS NOT SQL")


def test_a_step_that_fails_changes_nothing(backend: tuple[str, str]) -> None:
    open_backend(*backend).close()
    later = (*STEPS, Step(STEPS[-1].version + 1, "fails half way", broken))
    with pytest.raises(Exception, match=r"(?i)syntax"):
        open_backend(*backend, steps=later)
    store = open_backend(*backend)  # still at the old version, without the half column
    try:
        store.create(build(1))
        assert store.get(build(1).id) == build(1)
    finally:
        store.close()


def test_deletions_are_recorded_and_read_newest_first(opener: Opener) -> None:
    """Retention's record (issue 26): every tag a run deleted, readable by another
    process, newest first."""
    store = opener()
    assert store.deletions() == []
    first = [
        ImageDeletion(f"r.example/a:{n}", "a", "sha256:" + "1" * 64, 100.0, "run-1")
        for n in ("b", "a")
    ]
    later = ImageDeletion("r.example/b:c", "b", "sha256:" + "2" * 64, 200.0, "run-2")
    store.record_deletions(first)
    store.record_deletions([later])
    read = opener().deletions()
    assert read == [later, first[1], first[0]]
    assert store.deletions(limit=1) == [later]
    assert store.deletions(since=150.0) == [later]


def test_deletions_are_read_page_by_page(opener: Opener) -> None:
    """``GET /api/v1/retention/deletions``'s pages: each starts after the last deletion
    of the previous one, in the same order, with none left out or repeated."""
    store = opener()
    digest = "sha256:" + "4" * 64
    made = [
        ImageDeletion(f"r.example/a:{tag}", "a", digest, at, "run-1", 700)
        for at, tag in ((100.0, "x"), (100.0, "y"), (100.0, "z"), (50.0, "w"), (200.0, "v"))
    ]
    store.record_deletions(made)
    pages, after = [], None
    for _ in range(len(made) + 1):  # bounded: a cursor that does not advance would loop
        page = store.deletions(limit=2, after=after)
        if not page:
            break
        pages.append([d.image.rsplit(":", 1)[1] for d in page])
        after = (page[-1].deleted_at, page[-1].image)
    assert pages == [["v", "x"], ["y", "z"], ["w"]]
    assert opener().deletions(limit=1) == [made[4]]
    assert store.deletions(since=100.0, after=(100.0, "r.example/a:x"))[0].image.endswith(":y")


def test_the_totals_count_each_manifest_once(opener: Opener) -> None:
    """``/metrics``: images are tags deleted; a manifest's freed bytes count once however
    many tags it took with it; a deletion the registry could not measure adds none."""
    store = opener()
    assert store.deletion_totals() == DeletionTotals(0, 0, 0)
    one, two = "sha256:" + "5" * 64, "sha256:" + "6" * 64
    store.record_deletions(
        [
            ImageDeletion("r.example/a:1", "a", one, 10.0, "run-1", 1000),
            ImageDeletion("r.example/a:2", "a", one, 10.0, "run-1", 1000),
            ImageDeletion("r.example/b:1", "b", two, 11.0, "run-1", None),
        ]
    )
    store.record_deletions([ImageDeletion("r.example/a:1", "a", one, 20.0, "run-2", 5)])
    assert opener().deletion_totals() == DeletionTotals(images=4, manifests=3, freed_bytes=1005)
    assert store.deletions(limit=1)[0].freed_bytes == 5


def test_the_newest_request_of_each_image_is_kept(opener: Opener) -> None:
    """Cache hits record nothing else: retention reads this (issue 26)."""
    store, other = opener(), opener()
    store.note_request("r.example/a:1", 100.0)
    other.note_request("r.example/a:1", 300.0)
    store.note_request("r.example/a:1", 200.0)  # an older request arriving late
    store.note_request("r.example/b:1", 50.0)
    assert store.last_requests() == {"r.example/a:1": 300.0, "r.example/b:1": 50.0}
    assert other.last_requests(since=100.0) == {"r.example/a:1": 300.0}


def test_the_last_deletion_of_each_image(store: Store) -> None:
    digest = "sha256:" + "3" * 64
    store.record_deletions([ImageDeletion("r.example/a:1", "a", digest, 100.0, "run-1")])
    store.record_deletions([ImageDeletion("r.example/a:1", "a", digest, 300.0, "run-2")])
    store.record_deletions([ImageDeletion("r.example/b:1", "b", digest, 200.0, "run-2")])
    assert store.last_deletions() == {"r.example/a:1": 300.0, "r.example/b:1": 200.0}
