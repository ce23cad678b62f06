"""The coordinator's rules in milliseconds: ``BuildService`` over a real store (SQLite)
and the honest fakes of ``tests/fakes`` for the registry and the executor. The real
component tests (tests/integration) stay; these pin the rules one by one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobs.coordinator.build_requests import BuildQuery, BuildRequest
from jobs.coordinator.push import Push, PushRequest, RefChange
from jobs.coordinator.quotas import Quotas, StoreCounter
from jobs.coordinator.request_notes import note_interval
from jobs.errors import BuildFailed, InvalidRequest, QuotaExceeded
from jobs.model import Build, BuildState, ImageDeletion, LogLine
from jobs.naming import build_name_for, image_name_for
from jobs.service import MAX_ATTEMPTS, BuildService
from jobs.settings import Settings, load_settings
from jobs.sources.refs import RefResolver
from jobs.sources.specs import ResolvedRef
from jobs.store import SqliteStore, Store, StoreUnavailable
from tests.fakes import FakeExecutor, FakeRegistry

pytestmark = pytest.mark.anyio

REPO = "https://github.com/org/repo"
OTHER = "https://github.com/org/other"
PREFIX = "registry.test/t-"
SHA = [f"{i:x}" * 40 for i in range(1, 8)]


class Clock:
    """Epoch seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    service: BuildService
    store: Store
    registry: FakeRegistry
    executor: FakeExecutor
    clock: Clock


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"image_prefix": PREFIX, "state_path": tmp_path / "builds.sqlite"}
    values.update(overrides)
    return load_settings(None, **values)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """The state file a rig's service uses (closed by the service)."""
    return SqliteStore(tmp_path / "builds.sqlite")


@pytest.fixture
async def rig(tmp_path: Path, store: Store) -> AsyncIterator[Callable[..., Any]]:
    """``await rig(**settings)``: a started service on ``store`` with fresh fakes."""
    services: list[BuildService] = []

    async def make(**overrides: Any) -> Rig:
        clock = Clock()
        registry = FakeRegistry(clock=clock)
        executor = FakeExecutor(registry)
        config = settings(tmp_path, **overrides)
        service = BuildService(
            config,
            store=store,
            registry=registry,
            resolver=RefResolver(timeout=5, ttl=3600, clock=clock),
            executor=executor,
            clock=clock,
            quotas=Quotas(config.quotas, StoreCounter(store)),
        )
        await service.start()
        services.append(service)
        return Rig(service, store, registry, executor, clock)

    yield make
    for service in services:
        await service.close()


def on_branch(rig: Rig, sha: str, branch: str = "main", repo: str = REPO) -> None:
    """Let the resolver know ``branch`` of ``repo`` points at ``sha`` (as a push says)."""
    rig.service.resolver.remember(repo, branch, ResolvedRef(sha, "branch", f"refs/heads/{branch}"))


async def ended(rig: Rig, build_id: str) -> Build:
    """Wait for build ``build_id`` to finish; its final record."""
    async for _ in rig.service.watch(build_id):
        pass
    return rig.service.get(build_id)


def stored_states(rig: Rig) -> dict[str, BuildState]:
    return {build.id: build.state for build in rig.store.recent(limit=100)}


# -- dedupe and the cache -------------------------------------------------------------


async def test_a_request_for_a_commit_being_built_joins_it(rig: Callable[..., Any]) -> None:
    r: Rig = await rig()
    first = await r.service.request(REPO, SHA[0])
    second = await r.service.request(REPO, SHA[0], trigger="binderhub")
    assert (first.status, second.status) == ("created", "joined")
    assert first.build is not None
    assert second.build is first.build
    await r.executor.running(first.build.id)
    assert r.executor.started == [first.build.id]
    r.executor.finish(first.build.id)
    assert (await ended(r, first.build.id)).state is BuildState.BUILT
    lookups = r.registry.lookups
    third = await r.service.request(REPO, SHA[0])
    assert third.status == "cached"
    assert r.registry.lookups == lookups
    assert len(stored_states(r)) == 1


async def test_an_image_in_the_registry_is_answered_and_nothing_recorded(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig()
    r.registry.push(image_name_for(PREFIX, REPO, SHA[0]))
    outcome = await r.service.request(REPO, SHA[0])
    assert outcome.status == "cached"
    assert outcome.build is None
    assert stored_states(r) == {}
    assert r.executor.started == []


async def test_cache_hits_are_noted_for_retention_once_an_hour(rig: Callable[..., Any]) -> None:
    """Retention keeps an image requested within ``retention.keep_days``; a cache hit
    records no build, so it is noted, at most once an hour per image (issue 26)."""
    r: Rig = await rig()
    image = image_name_for(PREFIX, REPO, SHA[0])
    r.registry.push(image)
    assert (await r.service.request(REPO, SHA[0])).status == "cached"
    first = r.clock.now
    assert r.store.last_requests() == {image: first}
    r.clock.now += 1800
    assert (await r.service.request(REPO, SHA[0])).status == "cached"
    assert r.store.last_requests() == {image: first}
    r.clock.now += 1800
    assert (await r.service.request(REPO, SHA[0])).status == "cached"
    assert r.store.last_requests() == {image: r.clock.now}


async def test_the_catalog_leaves_out_what_retention_deleted_until_it_is_built_again(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig()
    first = await r.service.request(REPO, SHA[0])
    assert first.build is not None
    r.executor.finish(first.build.id)
    assert (await ended(r, first.build.id)).state is BuildState.BUILT
    assert [b.image for b in r.service.catalog()[REPO]] == [first.image]
    r.clock.now += 60
    # what a retention run does: the registry deletes it, the cache forgets it, the
    # store records it
    r.registry.images.discard(first.image)
    r.registry.forget(first.image)
    r.store.record_deletions(
        [ImageDeletion(first.image, "repo", "sha256:" + "0" * 64, r.clock.now, "run")]
    )
    assert r.service.catalog() == {}
    r.clock.now += 60
    again = await r.service.request(REPO, SHA[0])
    assert again.status == "created"
    assert again.build is not None
    r.executor.finish(again.build.id)
    assert (await ended(r, again.build.id)).state is BuildState.BUILT
    assert [b.image for b in r.service.catalog()[REPO]] == [first.image]


def test_a_note_is_never_older_than_the_window_that_keeps_its_image() -> None:
    assert note_interval(30) == 3600
    assert note_interval(0.02) == pytest.approx(0.01 * 86400)


# -- limits ---------------------------------------------------------------------------


async def test_builds_wait_for_the_global_and_per_repo_limits(rig: Callable[..., Any]) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 2, "max_concurrent_builds_per_repo": 1})
    a1, a2, b1, c1 = [
        (await r.service.request(repo, sha)).build
        for repo, sha in ((REPO, SHA[0]), (REPO, SHA[1]), (OTHER, SHA[2]), (OTHER + "2", SHA[3]))
    ]
    assert a1
    assert a2
    assert b1
    assert c1
    # scheduling is synchronous: the states are final when the requests return
    states = {build.id: r.service.get(build.id).state for build in (a1, a2, b1, c1)}
    assert states == {  # a2: its repo's limit; c1: the global one
        a1.id: BuildState.RUNNING,
        a2.id: BuildState.QUEUED,
        b1.id: BuildState.RUNNING,
        c1.id: BuildState.QUEUED,
    }
    r.executor.finish(a1.id)
    await ended(r, a1.id)
    # oldest first: a2 was asked for before c1
    assert r.service.get(a2.id).state is BuildState.RUNNING
    assert r.service.get(c1.id).state is BuildState.QUEUED
    await r.executor.running(a2.id)
    assert r.executor.started == [a1.id, b1.id, a2.id]


# -- supersede ------------------------------------------------------------------------


async def test_a_newer_commit_of_a_branch_supersedes_its_queued_builds(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 1})
    on_branch(r, SHA[0])
    running = (await r.service.request(REPO, "main")).build
    assert running is not None
    await r.executor.running(running.id)
    on_branch(r, SHA[1])
    older = (await r.service.request(REPO, "main")).build
    pinned = (await r.service.request(REPO, SHA[2])).build  # by SHA: never superseded
    on_branch(r, SHA[3])
    newer = (await r.service.request(REPO, "main")).build
    assert older
    assert pinned
    assert newer
    states = stored_states(r)
    assert states[older.id] is BuildState.SUPERSEDED
    assert (states[running.id], states[pinned.id], states[newer.id]) == (
        BuildState.RUNNING,
        BuildState.QUEUED,
        BuildState.QUEUED,
    )
    assert r.service.get(older.id).error == f"superseded by build {newer.id} of {SHA[3]}"


async def test_a_commit_asked_for_by_sha_is_no_longer_superseded(rig: Callable[..., Any]) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 1})
    blocker = (await r.service.request(REPO, SHA[6])).build
    assert blocker is not None
    await r.executor.running(blocker.id)
    on_branch(r, SHA[0])
    queued = (await r.service.request(REPO, "main")).build
    assert queued is not None
    assert (await r.service.request(REPO, SHA[0])).status == "joined"
    on_branch(r, SHA[1])
    await r.service.request(REPO, "main")
    assert stored_states(r)[queued.id] is BuildState.QUEUED


# -- cancel ---------------------------------------------------------------------------


async def test_cancelling_a_queued_and_a_running_build(rig: Callable[..., Any]) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 1})
    running = (await r.service.request(REPO, SHA[0])).build
    queued = (await r.service.request(OTHER, SHA[1])).build
    assert running
    assert queued
    await r.executor.running(running.id)
    assert (await r.service.cancel(queued.id)).state is BuildState.CANCELLED
    assert (await r.service.cancel(running.id)).state is BuildState.CANCELLED
    assert queued.id not in r.executor.started
    assert stored_states(r) == {running.id: BuildState.CANCELLED, queued.id: BuildState.CANCELLED}


# -- failure memory -------------------------------------------------------------------


async def test_a_commits_own_failure_is_remembered_until_it_expires(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(limits={"failure_memory": 600})
    build = (await r.service.request(REPO, SHA[0])).build
    assert build is not None
    r.executor.finish(build.id, BuildFailed("RUN make failed", remember=True))
    assert (await ended(r, build.id)).state is BuildState.FAILED
    again = await r.service.request(REPO, SHA[0])
    assert again.status == "failed-before"
    assert again.build is not None
    assert again.build.id == build.id
    r.clock.now += 599
    assert (await r.service.request(REPO, SHA[0])).status == "failed-before"
    forced = await r.service.request(REPO, SHA[0], force=True)
    assert forced.status == "created"
    assert forced.build is not None
    r.executor.finish(forced.build.id, BuildFailed("RUN make failed", remember=True))
    await ended(r, forced.build.id)
    r.clock.now += 601
    assert (await r.service.request(REPO, SHA[0])).status == "created"


async def test_a_failure_not_of_the_commit_is_not_remembered(rig: Callable[..., Any]) -> None:
    r: Rig = await rig()
    build = (await r.service.request(REPO, SHA[0])).build
    assert build is not None
    r.executor.finish(build.id, BuildFailed("the daemon went away"))
    await ended(r, build.id)
    assert (await r.service.request(REPO, SHA[0])).status == "created"


async def test_log_lines_and_errors_are_stored_redacted(rig: Callable[..., Any]) -> None:
    """Whatever a build prints (issue 20: a symlink made repo2docker print the service's
    environment), no secret of the settings is stored, streamed or served."""
    r: Rig = await rig(webhooks={"github_secret": "hook-s3cret"})
    r.executor.output = ["BINDERHUB_SERVICE_WEBHOOKS__GITHUB_SECRET=hook-s3cret"]
    build = (await r.service.request(REPO, SHA[0])).build
    assert build is not None
    async with r.service.events.subscribe(build.id) as events:
        await r.executor.running(build.id)
        r.executor.finish(build.id, BuildFailed("Invalid runtime.txt: hook-s3cret"))
        await ended(r, build.id)
        published = [events.get_nowait() for _ in range(events.qsize())]
    stored = r.service.get(build.id)
    assert stored.error == "Invalid runtime.txt: ***"
    _, lines = r.service.logs(build.id)
    assert ("build", "BINDERHUB_SERVICE_WEBHOOKS__GITHUB_SECRET=***") in lines
    assert published
    assert "hook-s3cret" not in repr(published)


async def test_a_failure_not_of_the_commit_with_the_image_pushed_is_built(
    rig: Callable[..., Any],
) -> None:
    # issue 20: a build that timed out (or whose cache export was cut) after the push
    r: Rig = await rig()
    build = (await r.service.request(REPO, SHA[0])).build
    assert build is not None
    await r.executor.running(build.id)
    r.registry.push(build.image)
    r.executor.finish(build.id, BuildFailed("build timed out after 60 seconds"))
    done = await ended(r, build.id)
    assert (done.state, done.error) == (BuildState.BUILT, None)
    assert r.store.logs(build.id)[-1] == (
        "",
        f"build timed out after 60 seconds; {build.image} is in the registry, so the build"
        " is built",
    )
    assert (await r.service.request(REPO, SHA[0])).status == "cached"


async def test_a_registry_that_cannot_answer_leaves_the_failure(rig: Callable[..., Any]) -> None:
    r: Rig = await rig()
    build = (await r.service.request(REPO, SHA[0])).build
    assert build is not None
    await r.executor.running(build.id)
    r.registry.push(build.image)
    r.registry.down = True
    r.executor.finish(build.id, BuildFailed("build timed out after 60 seconds"))
    done = await ended(r, build.id)
    assert (done.state, done.error) == (BuildState.FAILED, "build timed out after 60 seconds")


# -- recovery -------------------------------------------------------------------------


def record(store: Store, sha: str, state: BuildState, attempts: int = 0) -> Build:
    image = image_name_for(PREFIX, REPO, sha)
    build = Build(
        id=sha[:32],
        repo=REPO,
        ref=sha,
        ref_kind="commit",
        sha=sha,
        image=image,
        name=build_name_for(image),
        state=state,
        trigger="api",
        created_at=float(attempts),
        attempts=attempts,
    )
    store.create(build)
    return build


async def test_start_takes_over_what_a_previous_process_left(
    rig: Callable[..., Any], store: Store
) -> None:
    queued = record(store, SHA[0], BuildState.QUEUED)
    interrupted = record(store, SHA[1], BuildState.RUNNING, attempts=1)
    worn_out = record(store, SHA[2], BuildState.RUNNING, attempts=MAX_ATTEMPTS)
    r: Rig = await rig(limits={"max_concurrent_builds": 5, "max_concurrent_builds_per_repo": 5})
    await r.executor.running(interrupted.id)
    await r.executor.running(queued.id)
    assert sorted(r.executor.started) == sorted([queued.id, interrupted.id])
    assert r.service.get(interrupted.id).attempts == 2
    failed = r.service.get(worn_out.id)
    assert failed.state is BuildState.FAILED
    assert failed.error == f"interrupted by {MAX_ATTEMPTS} service restarts; giving up"


async def test_the_service_deletes_old_logs_from_its_start_to_its_close(
    rig: Callable[..., Any], store: Store
) -> None:
    """Log retention is the service's: ``start`` begins it, ``close`` ends it."""
    old = record(store, SHA[0], BuildState.BUILT)
    store.update(old.id, finished_at=1000.0)  # finished in 1970: past any retention
    store.append_log(old.id, "", "an old line")
    r: Rig = await rig(build_logs={"retention_days": 1}, webhooks={"reconcile_interval": 3600})
    for _ in range(500):  # the first round runs at start, on a worker thread
        if not store.logs(old.id):
            break
        await asyncio.sleep(0.01)
    assert store.logs(old.id) == []
    assert r.service.get(old.id).state is BuildState.BUILT  # the record stays
    assert r.service.beside == ["log-retention", "reconciler"]
    await r.service.close()
    assert r.service.beside == []


async def test_a_one_shot_service_runs_no_work_beside_its_build(
    tmp_path: Path, store: Store
) -> None:
    config = settings(tmp_path, build_logs={"retention_days": 1})
    registry = FakeRegistry()
    service = BuildService(
        config,
        store=store,
        registry=registry,
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=FakeExecutor(registry),
    )
    old = record(store, SHA[0], BuildState.BUILT)
    store.update(old.id, finished_at=1000.0)
    store.append_log(old.id, "", "an old line")
    await service.start(recover=False)
    assert service.beside == []
    await service.close(abandon=True)
    assert SqliteStore(tmp_path / "builds.sqlite").logs(old.id) == [("", "an old line")]


async def test_start_leaves_a_build_another_live_process_runs(tmp_path: Path, store: Store) -> None:
    elsewhere = record(store, SHA[0], BuildState.RUNNING, attempts=1)
    registry = FakeRegistry()
    executor = FakeExecutor(registry)
    executor.elsewhere.add(elsewhere.id)
    service = BuildService(
        settings(tmp_path),
        store=store,
        registry=registry,
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=executor,
    )
    await service.start()
    try:
        assert executor.started == []
        assert service.get(elsewhere.id).state is BuildState.RUNNING
        joined = await service.request(REPO, SHA[0])  # the record says running: join it
        assert joined.status == "joined"
        assert joined.build is not None
        assert joined.build.id == elsewhere.id
    finally:
        await service.close()


# -- quotas ---------------------------------------------------------------------------


async def test_a_requester_over_quota_is_refused_and_nothing_recorded(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(quotas={"per_user": {"builds_per_window": 1, "window": 600}})
    first = await r.service.request(REPO, SHA[0], requester="ann")
    assert first.status == "created"
    with pytest.raises(QuotaExceeded):
        await r.service.request(REPO, SHA[1], requester="ann")
    assert (await r.service.request(REPO, SHA[0], requester="ann")).status == "joined"
    assert (await r.service.request(REPO, SHA[1], requester="bob")).status == "created"
    assert len(stored_states(r)) == 2


# -- the door: typed requests and pushes ----------------------------------------------


async def test_receive_request_is_what_request_is_short_for(rig: Callable[..., Any]) -> None:
    r: Rig = await rig()
    outcome = await r.service.receive_request(BuildRequest(REPO, SHA[0], trigger="binderhub"))
    assert outcome.status == "created"
    assert outcome.build is not None
    assert outcome.build.trigger == "binderhub"


def push(delivery: str | None, *changes: tuple[str, str | None]) -> PushRequest:
    event = Push((REPO,), "main", tuple(RefChange(ref, sha) for ref, sha in changes))
    return PushRequest("github", delivery, event)


PUSH_SETTINGS: dict[str, Any] = {"repos": [{"url": REPO, "tags": ["v*"]}]}


async def test_a_push_records_its_builds_and_its_answer_together(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(**PUSH_SETTINGS)
    delivery = push(
        "d-1",
        ("refs/heads/main", SHA[0]),
        ("refs/tags/v1", SHA[0]),
        ("refs/heads/topic", SHA[1]),
        ("refs/tags/old", None),
    )
    answer = r.service.receive_push(delivery)
    assert not answer.duplicate
    assert answer.outcome == "accepted"
    assert [(b["ref"], b["outcome"]) for b in answer.answer["builds"]] == [
        ("refs/heads/main", "created"),
        ("refs/tags/v1", "joined"),
    ]
    assert answer.answer["ignored"] == [
        {
            "ref": "refs/heads/topic",
            "reason": "not the default branch (main) and branches is not set",
        },
        {"ref": "refs/tags/old", "reason": "deleted"},
    ]
    (build,) = r.store.recent()
    assert (build.trigger, build.ref, build.sha) == ("github", "main", SHA[0])
    assert r.service.resolver.cached(REPO, "main") == ResolvedRef(
        SHA[0], "branch", "refs/heads/main"
    )
    again = r.service.receive_push(delivery)
    assert again.duplicate
    assert again.outcome == "duplicate"
    assert again.answer == answer.answer
    assert len(r.store.recent()) == 1


async def test_an_ignored_push_is_remembered_too(rig: Callable[..., Any]) -> None:
    r: Rig = await rig(**PUSH_SETTINGS)
    answer = r.service.receive_push(push("d-2", ("refs/heads/topic", SHA[0])))
    assert (answer.outcome, answer.answer["reason"]) == ("ignored", "no ref to build")
    assert r.service.recorded_push("github", "d-2") == type(answer)(answer.answer, True)
    assert r.service.recorded_push("gitlab", "d-2") is None


class FullStore(SqliteStore):
    """A store whose disk fills up when a delivery is recorded."""

    def remember_delivery(self, *args: Any, **kwargs: Any) -> bool:
        super().remember_delivery(*args, **kwargs)
        raise sqlite3.OperationalError("database or disk is full")


async def test_a_push_whose_answer_cannot_be_recorded_records_no_build(
    tmp_path: Path,
) -> None:
    registry = FakeRegistry()
    executor = FakeExecutor(registry)
    store = FullStore(tmp_path / "builds.sqlite")
    service = BuildService(
        settings(tmp_path, **PUSH_SETTINGS),
        store=store,
        registry=registry,
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=executor,
    )
    await service.start()
    try:
        with pytest.raises(sqlite3.OperationalError):
            service.receive_push(push("d-3", ("refs/heads/main", SHA[0])))
        assert store.recent() == []
        assert service.recorded_push("github", "d-3") is None
        # nothing queued in memory either: asking for the commit creates its build
        assert (await service.request(REPO, SHA[0])).status == "created"
    finally:
        await service.close()


async def test_list_builds_pages_newest_first(rig: Callable[..., Any]) -> None:
    r: Rig = await rig(limits={"max_concurrent_builds": 1})
    ids = []
    for sha in SHA[:3]:
        r.clock.now += 1
        build = (await r.service.request(REPO, sha)).build
        assert build is not None
        ids.append(build.id)
    first = r.service.list_builds(BuildQuery(limit=2))
    assert [b.id for b in first.builds] == [ids[2], ids[1]]
    assert first.next_cursor == ids[1]
    rest = r.service.list_builds(BuildQuery(limit=2, cursor=first.next_cursor))
    assert [b.id for b in rest.builds] == [ids[0]]
    assert rest.next_cursor is None
    queued = r.service.list_builds(BuildQuery(state=BuildState.QUEUED))
    assert [b.id for b in queued.builds] == [ids[2], ids[1]]
    with pytest.raises(InvalidRequest, match="cursor is not a build id from a previous page"):
        r.service.list_builds(BuildQuery(cursor="f" * 32))


async def test_a_watcher_gets_the_lines_another_process_stores(
    rig: Callable[..., Any], tmp_path: Path
) -> None:
    r: Rig = await rig()
    other = SqliteStore(tmp_path / "builds.sqlite")  # another replica, on the same database
    build = record(other, SHA[0], BuildState.RUNNING, attempts=1)
    events: list[tuple[str, str]] = []

    async def watch() -> None:
        async for event in r.service.watch(build.id, poll_interval=0.01):
            events.append((event.kind, event.message if event.kind == "log" else event.state or ""))

    watcher = asyncio.create_task(watch())
    other.append_log(build.id, "building", "step 1")
    await asyncio.sleep(0.1)
    other.append_log(build.id, "building", "step 2")
    other.update(build.id, state=BuildState.BUILT, finished_at=2.0)
    await asyncio.wait_for(watcher, 10)
    other.close()
    assert events == [
        ("state", "queued"),
        ("state", "running"),
        ("log", "step 1"),
        ("log", "step 2"),
        ("state", "built"),
    ]


async def test_a_watcher_that_waits_past_the_poll_interval_repeats_no_line(
    rig: Callable[..., Any],
) -> None:
    """Lines sent live, then a silence longer than the poll interval (a long build step
    under load): the poll reads only what was stored after the last line sent, never the
    live lines again."""
    r: Rig = await rig()
    build = (await r.service.request(REPO, SHA[0])).build
    assert build is not None
    await r.executor.running(build.id)
    events: list[str] = []

    async def watch() -> None:
        async for event in r.service.watch(build.id, poll_interval=0.05):
            events.append(event.message if event.kind == "log" else event.state or "")

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.01)  # it subscribed: what follows comes live
    running = r.service.get(build.id)
    for message in ("step 1", "step 2"):
        r.service.runner.announce.line(running, LogLine("build", message))
    await asyncio.sleep(0.3)  # several polls with nothing new
    r.executor.finish(build.id)
    await asyncio.wait_for(watcher, 10)
    lines = [message for _, message in r.store.logs(build.id)]
    assert [e for e in events if e in lines] == lines, events


class LateStore(SqliteStore):
    """Another replica's answer to a delivery committed just after this one looked for it:
    the first look finds nothing."""

    looked = False

    def delivery(self, provider: str, delivery_id: str) -> str | None:
        if not self.looked:
            self.looked = True
            return None
        return super().delivery(provider, delivery_id)


async def test_a_delivery_another_replica_recorded_first_gets_its_answer(
    rig: Callable[..., Any], tmp_path: Path
) -> None:
    first: Rig = await rig(**PUSH_SETTINGS)
    answer = first.service.receive_push(push("d-race", ("refs/heads/main", SHA[0])))
    assert answer.outcome == "accepted"
    late = LateStore(tmp_path / "builds.sqlite")
    second = BuildService(
        settings(tmp_path, **PUSH_SETTINGS),
        store=late,
        registry=FakeRegistry(),
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=FakeExecutor(FakeRegistry()),
    )
    await second.start(recover=False)
    try:
        again = second.receive_push(push("d-race", ("refs/heads/main", SHA[0])))
        assert late.looked
        assert again == type(answer)(answer.answer, True)  # the first answer, as a duplicate
        await asyncio.wait_for(second.wait_idle(), 5)  # its own decision was undone
        assert len(late.recent()) == 1
    finally:
        await second.close()


class DownStore(SqliteStore):
    """A store whose database is unreachable while ``down`` (writes and reads refused)."""

    down = False

    def update(self, build_id: str, **fields: Any) -> None:
        if self.down:
            raise StoreUnavailable("the database cannot be reached: test")
        super().update(build_id, **fields)

    def append_log(self, *args: Any, **kwargs: Any) -> tuple[int, str, str] | None:
        if self.down:
            raise StoreUnavailable("the database cannot be reached: test")
        return super().append_log(*args, **kwargs)


async def test_a_build_that_ends_during_an_outage_is_recorded_when_the_store_is_back(
    tmp_path: Path,
) -> None:
    store = DownStore(tmp_path / "builds.sqlite")
    registry = FakeRegistry()
    executor = FakeExecutor(registry)
    service = BuildService(
        settings(tmp_path),
        store=store,
        registry=registry,
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=executor,
    )
    await service.start()
    try:
        build = (await service.request(REPO, SHA[0])).build
        assert build is not None
        await executor.running(build.id)
        store.down = True
        executor.finish(build.id)
        await asyncio.wait_for(service.wait_idle(), 5)  # it ended, in memory
        stored = SqliteStore(tmp_path / "builds.sqlite")
        assert stored.get(build.id).state is BuildState.RUNNING  # type: ignore[union-attr]
        store.down = False
        for _ in range(100):  # written by the store's retry, every RETRY_SECONDS
            if stored.get(build.id).state is BuildState.BUILT:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.1)
        assert stored.get(build.id).state is BuildState.BUILT  # type: ignore[union-attr]
        stored.close()
    finally:
        await service.close()
