"""The coordinator with a durable executor: what it hands over after a restart.

The executor here is a stand-in that follows ``DurableExecutor``'s contract (its
builds outlive the service) and records what it was asked; store and registry are
real. The real Kubernetes executor is tested against the cluster
(tests/cluster/test_kubernetes_executor.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from jobs.executors import DurableExecutor, Note
from jobs.factory import make_registry_client
from jobs.model import Build, BuildState, CountedBuild, LogLine
from jobs.service import BuildService
from jobs.settings import Settings
from jobs.sources.refs import RefResolver
from jobs.sources.specs import ResolvedRef
from jobs.store import SqliteStore

OUTPUT = ["Step 1/3 : FROM base", " ---> Running in 1", "hello"]


class EndlessBuilds(DurableExecutor):
    """Every build writes a note and ``OUTPUT``, then runs until the service stops
    following it, as a Job would (the lines it wrote before are not written again)."""

    backend = "stand-in"

    def __init__(self) -> None:
        self.resume_lines: list[int] = []
        self.writing = asyncio.Event()

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        self.resume_lines.append(resume_lines)
        on_log(Note("", "created the build"))
        on_start(None)
        for message in OUTPUT[resume_lines:]:
            on_log(LogLine("building", message))
        self.writing.set()
        await asyncio.Event().wait()

    async def cancel(self, build: Build) -> None:
        pass

    async def check(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def adopt(self, found: Callable[[Build], None]) -> None:
        pass

    def counted_builds(self) -> list[CountedBuild]:
        return []


def service_with(settings: Settings, executor: EndlessBuilds) -> BuildService:
    return BuildService(
        settings,
        store=SqliteStore(settings.state_path),
        registry=make_registry_client(settings),
        resolver=RefResolver(timeout=5, ttl=0),
        executor=executor,
    )


@pytest.mark.anyio
async def test_a_build_followed_again_skips_its_own_output_not_the_notes(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(limits={"max_concurrent_builds": 1})
    first = EndlessBuilds()
    service = service_with(settings, first)
    await service.start()
    resolved = ResolvedRef("0" * 40, "branch", "refs/heads/main")
    outcome = await service.request_commit(
        "https://example.org/durable", "main", resolved, trigger="api", check_registry=False
    )
    assert outcome.build is not None
    await first.writing.wait()
    await service.close()  # the build stays running in the store and "in the cluster"

    again = EndlessBuilds()
    restarted = service_with(settings, again)
    await restarted.start()
    await again.writing.wait()
    try:
        assert first.resume_lines == [0]
        assert again.resume_lines == [len(OUTPUT)]
        build = restarted.get(outcome.build.id)
        assert build.state is BuildState.RUNNING
        assert build.attempts == 1  # followed, not run again
        messages = [message for _, message in restarted.store.logs(build.id)]
        assert [m for m in messages if m in OUTPUT] == OUTPUT  # each line once
    finally:
        await restarted.close()
