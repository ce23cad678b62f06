"""The contract of ``jobs.executors.Executor`` for a plain executor, kept by
``FakeExecutor`` and by ``LocalExecutor`` running repo2docker on a tiny Dockerfile:
a build starts (``on_start``), logs, and ends with its image pushed, or raises
``BuildFailed`` (remembered when the commit itself failed, and when cancelled)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from jobs.errors import BuildFailed
from jobs.executors import Executor
from jobs.executors.local.executor import LocalExecutor
from jobs.model import Build, BuildState, LogLine
from jobs.naming import build_name_for, image_name_for
from jobs.registry.client import Registry, RegistryClient
from jobs.settings import load_settings
from testkit.components import GitServer, dockerfile, legacy_repo2docker
from tests.fakes import FakeExecutor, FakeRegistry

from .conftest import IMPLEMENTATIONS

pytestmark = pytest.mark.anyio

Kind = Literal["works", "fails", "slow"]
STEPS = {"works": "RUN true", "fails": "RUN false", "slow": "RUN sleep 300"}


@dataclass
class ExecutorRig:
    executor: Executor
    registry: Registry
    new_build: Callable[[Kind], Build]
    """A build of a commit that builds, fails in a step, or takes minutes."""
    let_end: Callable[[Build, Kind], None]
    """What ends a build of that kind by itself (the fake needs to be told)."""


def build_of(prefix: str, url: str, sha: str) -> Build:
    image = image_name_for(prefix, url, sha)
    return Build(
        id=sha[:32],
        repo=url,
        ref=sha,
        ref_kind="commit",
        sha=sha,
        image=image,
        name=build_name_for(image),
        state=BuildState.RUNNING,
        trigger="api",
        created_at=0.0,
    )


@pytest.fixture(params=IMPLEMENTATIONS)
async def rig(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str
) -> AsyncIterator[ExecutorRig]:
    if request.param == "fake":
        registry = FakeRegistry()
        fake = FakeExecutor(registry)
        shas = iter(f"{i:040x}" for i in range(1, 100))

        def end(build: Build, kind: Kind) -> None:
            if kind == "works":
                fake.finish(build.id)
            elif kind == "fails":
                fake.finish(build.id, BuildFailed("a Dockerfile step failed", remember=True))

        yield ExecutorRig(
            fake, registry, lambda kind: build_of("registry.test/f-", "git://x/r", next(shas)), end
        )
        return
    server: GitServer = request.getfixturevalue("real_git_server")
    real_registry = request.getfixturevalue("real_registry")
    prefix = f"{real_registry.host}/c{unique}-"
    settings = load_settings(
        None,
        image_prefix=prefix,
        state_path=tmp_path / "state.sqlite",
        repo2docker=legacy_repo2docker(),
    )
    executor = LocalExecutor(settings)
    client = RegistryClient(real_registry.url)
    count = iter(range(100))

    def new_build(kind: Kind) -> Build:
        repo = server.create_repo(
            f"{kind}-{unique}-{next(count)}", {"Dockerfile": dockerfile(STEPS[kind])}
        )
        sha = repo.commit({}, "the build's commit")
        return build_of(prefix, repo.url, sha)

    yield ExecutorRig(executor, client, new_build, lambda build, kind: None)
    await executor.close()
    await client.aclose()


class Watcher:
    """What ``run`` tells its callbacks."""

    def __init__(self) -> None:
        self.starts: list[int | None] = []
        self.lines: list[LogLine] = []
        self.started = asyncio.Event()

    def on_start(self, pid: int | None) -> None:
        self.starts.append(pid)
        self.started.set()


async def test_a_build_that_works_starts_logs_and_pushes_its_image(rig: ExecutorRig) -> None:
    build = rig.new_build("works")
    watcher = Watcher()
    rig.let_end(build, "works")
    await rig.executor.run(build, watcher.lines.append, watcher.on_start)
    assert len(watcher.starts) == 1
    assert watcher.lines
    assert await rig.registry.has_image(build.image, use_cache=False)


async def test_a_build_whose_step_fails_raises_a_remembered_failure(rig: ExecutorRig) -> None:
    build = rig.new_build("fails")
    watcher = Watcher()
    rig.let_end(build, "fails")
    with pytest.raises(BuildFailed) as failed:
        await rig.executor.run(build, watcher.lines.append, watcher.on_start)
    assert failed.value.remember
    assert not await rig.registry.has_image(build.image, use_cache=False)


async def test_a_cancelled_build_raises_build_failed(rig: ExecutorRig) -> None:
    build = rig.new_build("slow")
    watcher = Watcher()
    running = asyncio.create_task(rig.executor.run(build, watcher.lines.append, watcher.on_start))
    await watcher.started.wait()
    await rig.executor.cancel(build)
    with pytest.raises(BuildFailed) as failed:
        await running
    assert not failed.value.remember


async def test_a_build_nobody_runs_is_not_recovered(rig: ExecutorRig) -> None:
    assert await rig.executor.recover(rig.new_build("works")) is False


async def test_check_answers_when_builds_can_run(rig: ExecutorRig) -> None:
    await rig.executor.check()
