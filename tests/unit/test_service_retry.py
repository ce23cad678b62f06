"""Temporary failures before a build starts are retried (issues 20 and 21): the build goes
back in the queue with a time before which it does not run, its log says why, the forge
never sees a failure, and it fails after ``RetryPolicy.attempts`` tries naming what could
not be reached. ``BuildService`` over a real store and the fakes of ``tests/fakes``; the
integration test with a real registry is tests/integration/test_retry.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.coordinator.push import Push, PushRequest, RefChange
from jobs.coordinator.retries import Retry, RetryPolicy
from jobs.errors import BuildFailed, TemporaryError
from jobs.executors import DurableExecutor
from jobs.forges.base import CommitStatus, HookChange
from jobs.forges.hosts import Forges
from jobs.forges.status import StatusReporter
from jobs.model import Build, BuildState, CountedBuild, LogLine
from jobs.service import BuildService
from jobs.settings import ForgeSettings, load_settings
from jobs.sources.refs import RefResolver
from jobs.sources.specs import ResolvedRef
from jobs.store import SqliteStore, Store
from tests.fakes import FakeExecutor, FakeRegistry

pytestmark = pytest.mark.anyio

REPO = "https://github.com/org/repo"
PREFIX = "registry.test/t-"
SHA = [f"{i:x}" * 40 for i in range(1, 5)]
QUICK = RetryPolicy(attempts=1000, max_delay=0.01)
"""Tries every 10 ms for as long as a test takes."""


def push(delivery: str, sha: str) -> PushRequest:
    return PushRequest(
        "github", delivery, Push((REPO,), "main", (RefChange("refs/heads/main", sha),))
    )


async def until(predicate: Callable[[], Any], what: str) -> Any:
    """The first truthy value of ``predicate()``, asked as the loop turns (10 s at most)."""
    for _ in range(2000):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.005)
    raise AssertionError(f"never: {what}")


def notes(store: Store, build_id: str, words: str) -> list[str]:
    return [message for _, message in store.logs(build_id) if words in message]


class Rig:
    def __init__(self, tmp_path: Path, executor: Any = None, **overrides: Any) -> None:
        retry = overrides.pop("retry", QUICK)
        self.store = SqliteStore(tmp_path / "builds.sqlite")
        self.registry = FakeRegistry()
        self.executor = executor or FakeExecutor(self.registry)
        self.settings = load_settings(
            None,
            image_prefix=PREFIX,
            state_path=tmp_path / "builds.sqlite",
            repos=[{"url": REPO}],
            **overrides,
        )
        self.service = BuildService(
            self.settings,
            store=self.store,
            registry=self.registry,
            resolver=RefResolver(timeout=5, ttl=3600),
            executor=self.executor,
            retry=retry,
        )

    def pushed(self, sha: str = SHA[0], delivery: str = "d-1") -> Build:
        answer = self.service.receive_push(push(delivery, sha))
        assert answer.outcome == "accepted", answer.answer
        (outcome,) = answer.answer["builds"]
        assert outcome["outcome"] == "created"
        return self.service.get(outcome["id"])

    async def ended(self, build_id: str) -> Build:
        async for _ in self.service.watch(build_id):
            pass
        return self.service.get(build_id)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    rigs: list[Rig] = []

    async def make(**overrides: Any) -> Rig:
        made = Rig(tmp_path / str(len(rigs)), **overrides)
        await made.service.start()
        rigs.append(made)
        return made

    yield make
    for made in rigs:
        await made.service.close()


async def test_a_push_accepted_while_the_registry_is_down_builds_once_it_is_back(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig()
    r.registry.down = True
    build = r.pushed()
    # Tries follow each other 0.01 s apart and each holds the build running while it asks
    # the registry, so the state is read between two tries: it must come back to queued.
    await until(
        lambda: (
            len(notes(r.store, build.id, "trying again")) >= 2
            and r.service.get(build.id).state is BuildState.QUEUED
        ),
        "two retries, then queued between tries",
    )
    assert r.executor.started == []  # the executor never ran
    stored = r.store.get(build.id)
    assert stored is not None
    assert (stored.state, stored.error, stored.attempts) == (BuildState.QUEUED, None, 0)
    first = notes(r.store, build.id, "trying again")[0]
    assert first == "the fake registry is down; trying again in 0.01 s (attempt 1 of 1000)"

    r.registry.down = False
    await r.executor.running(build.id)
    r.executor.finish(build.id)
    done = await r.ended(build.id)
    assert (done.state, done.error, done.attempts) == (BuildState.BUILT, None, 1)


async def test_a_build_that_never_reaches_the_registry_fails_after_its_tries_naming_it(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(retry=RetryPolicy(attempts=3, max_delay=0.01))
    r.registry.down = True
    build = r.pushed()
    done = await r.ended(build.id)
    assert done.state is BuildState.FAILED
    assert done.error == "could not start after 3 attempts: the fake registry is down"
    assert not done.error_remembered
    assert notes(r.store, build.id, "the fake registry is down") == [
        "the fake registry is down; trying again in 0.01 s (attempt 1 of 3)",
        "the fake registry is down; trying again in 0.01 s (attempt 2 of 3)",
        "the fake registry is down; giving up after 3 attempts",
    ]
    assert r.executor.started == []
    # not remembered: the next push of the commit builds
    r.registry.down = False
    again = r.pushed(delivery="d-2")
    assert again.id != build.id


async def test_a_backend_that_does_not_answer_before_the_start_is_retried(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig()
    r.executor.down = True
    build = r.pushed()
    await until(lambda: notes(r.store, build.id, "the fake executor is down"), "a retry")
    assert r.service.get(build.id).state is BuildState.QUEUED  # its slot is free
    r.executor.down = False
    await r.executor.running(build.id)
    r.executor.finish(build.id)
    assert (await r.ended(build.id)).state is BuildState.BUILT


async def test_a_build_waiting_for_its_next_try_can_be_cancelled_or_superseded(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig(retry=RetryPolicy(attempts=5, max_delay=3600))
    r.registry.down = True
    first = r.pushed(SHA[0], "d-1")
    await until(lambda: notes(r.store, first.id, "trying again"), "a retry")
    assert (await r.service.cancel(first.id)).state is BuildState.CANCELLED

    second = r.pushed(SHA[1], "d-2")
    await until(lambda: notes(r.store, second.id, "trying again"), "a retry")
    third = r.pushed(SHA[2], "d-3")
    assert r.service.get(second.id).state is BuildState.SUPERSEDED
    assert r.store.get(second.id).state is BuildState.SUPERSEDED  # type: ignore[union-attr]
    await until(lambda: notes(r.store, third.id, "trying again"), "a retry")
    assert r.executor.started == []


class RecordingForge:
    """A forge client that records the commit statuses it is sent."""

    kind = "github"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def set_status(self, project: str, sha: str, status: CommitStatus) -> None:
        self.sent.append(status.state)

    def resolve(self, project: str, ref: str) -> ResolvedRef | None:
        raise AssertionError("not used")

    def install_hook(self, project: str, url: str, secret: str) -> HookChange:
        raise AssertionError("not used")


async def test_the_forge_sees_a_retried_build_pending_never_failed(
    rig: Callable[..., Any],
) -> None:
    r: Rig = await rig()
    forge = RecordingForge()
    configured = Forges.from_settings(
        ForgeSettings.model_validate(
            {"hosts": [{"kind": "github", "url": "https://github.com", "token": "t"}]}
        )
    )
    host = configured.match(REPO).host  # type: ignore[union-attr]
    reporter = StatusReporter(
        Forges([(host, forge)]), r.service.get, context="binder", public_url=None
    )
    r.service.events.add_listener(reporter.on_event)
    r.executor.down = True
    build = r.pushed()
    await until(lambda: len(notes(r.store, build.id, "trying again")) >= 3, "three retries")
    await reporter.drain()
    assert forge.sent
    assert set(forge.sent) <= {"pending", "running"}
    r.executor.down = False
    await r.executor.running(build.id)
    r.executor.finish(build.id)
    await r.ended(build.id)
    await reporter.drain()
    assert "failure" not in forge.sent
    assert forge.sent[-1] == "success"


def test_the_delay_doubles_from_retry_after_up_to_its_bound() -> None:
    policy = RetryPolicy(attempts=8, max_delay=600)
    assert [policy.delay(30, n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]
    assert policy.delay(1, 1) == 1
    error = TemporaryError("registry http://r could not be reached: ConnectError")
    assert Retry(2, 8, 60.0).note(error) == (
        "registry http://r could not be reached: ConnectError; "
        "trying again in 60 s (attempt 2 of 8)"
    )
    assert Retry(8, 8, None).failure(error) == (
        "could not start after 8 attempts: registry http://r could not be reached: ConnectError"
    )


class HeldJobs(DurableExecutor):
    """A durable executor whose queue lets a build start when the test says
    (``release``); ``down``: its API does not answer, so nothing is created."""

    backend = "held"

    def __init__(self) -> None:
        self.down = False
        self.received: list[str] = []
        self._released: dict[str, asyncio.Event] = {}

    def _gate(self, build_id: str) -> asyncio.Event:
        return self._released.setdefault(build_id, asyncio.Event())

    def release(self, build_id: str) -> None:
        self._gate(build_id).set()

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        if self.down:
            raise TemporaryError("the held API is not answering")
        self.received.append(build.id)
        await self._gate(build.id).wait()
        on_start(None)

    async def cancel(self, build: Build) -> None:
        raise BuildFailed("cancelled")

    async def check(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def adopt(self, found: Callable[[Build], None]) -> None:
        pass

    def counted_builds(self) -> list[CountedBuild]:
        return []


async def test_a_durable_executor_gets_the_build_while_the_registry_is_down(
    rig: Callable[..., Any],
) -> None:
    # its queue outlives this process (a restart loses nothing) and lets the build
    # start only when what it needs answers (the queue keeper); this process only waits
    executor = HeldJobs()
    r: Rig = await rig(executor=executor)
    r.registry.down = True
    build = r.pushed()
    await until(lambda: executor.received == [build.id], "the executor to get it")
    (note,) = notes(r.store, build.id, "the fake registry is down")
    assert note == "the fake registry is down; handed to the queue, which waits for it"
    r.registry.down = False
    r.registry.push(build.image)  # what its build does
    executor.release(build.id)
    assert (await r.ended(build.id)).state is BuildState.BUILT


async def test_a_durable_executor_that_cannot_take_the_build_has_it_retried(
    rig: Callable[..., Any],
) -> None:
    executor = HeldJobs()
    r: Rig = await rig(executor=executor)
    executor.down = True
    build = r.pushed()
    await until(lambda: len(notes(r.store, build.id, "trying again")) >= 2, "two retries")
    assert r.service.get(build.id).state is BuildState.QUEUED
    executor.down = False
    await until(lambda: executor.received == [build.id], "the executor to get it")
    r.registry.push(build.image)
    executor.release(build.id)
    assert (await r.ended(build.id)).state is BuildState.BUILT
