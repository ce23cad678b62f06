"""A push queued while the real registry is stopped waits, and builds once the registry is
started again (issues 20 and 21): the service with the local executor, repo2docker and a
real registry that stops and starts on its port. The rules one by one, with the fakes,
are tests/unit/test_service_retry.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.coordinator.push import Push, PushRequest, RefChange
from jobs.coordinator.retries import RetryPolicy
from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import load_settings
from testkit.components import GitServer, dockerfile, in_registry, start_registry

from .conftest import with_legacy_repo2docker
from .test_pipeline import wait_finished

pytestmark = pytest.mark.anyio
StartService = Callable[..., Any]


async def test_a_push_queued_while_the_registry_is_stopped_builds_once_it_is_started(
    git_server: GitServer,
    start_service: StartService,
    docker_ready: None,
    tmp_path: Path,
    unique: str,
) -> None:
    registry = start_registry(tmp_path / "registry")
    port = int(registry.host.rpartition(":")[2])
    try:
        repo = git_server.create_repo(f"retry-{unique}", {"Dockerfile": dockerfile()})
        sha = repo.commit({"README.md": "the pushed commit\n"})
        settings = load_settings(
            None,
            **with_legacy_repo2docker(
                {
                    "image_prefix": f"{registry.host}/t{unique}-",
                    "state_path": tmp_path / "state" / "builds.sqlite",
                    "repos": [{"url": repo.url}],
                }
            ),
        )
        # tried every second (by default 30 s, then twice as long each time)
        service: BuildService = await start_service(
            settings, retry=RetryPolicy(attempts=600, max_delay=1)
        )
        registry.stop()
        change = RefChange("refs/heads/main", sha)
        answer = service.receive_push(
            PushRequest("github", f"d-{unique}", Push((repo.url,), "main", (change,)))
        )
        assert answer.outcome == "accepted", answer.answer
        (created,) = answer.answer["builds"]
        build = service.get(created["id"])

        def retries() -> list[str]:
            return [m for _, m in service.store.logs(build.id) if "trying again" in m]

        async with service.events.subscribe(build.id) as events, asyncio.timeout(60):
            while len(retries()) < 2:
                await events.get()
        stored = service.store.get(build.id)
        assert stored is not None
        assert (stored.state, stored.error, stored.pid) == (BuildState.QUEUED, None, None)
        assert retries()[0].startswith(f"registry {registry.url} could not be reached: ")
        assert "trying again in 1 s (attempt 1 of 600)" in retries()[0]

        registry = start_registry(tmp_path / "registry", port=port)
        await wait_finished(service, build.id, within=300)
        done = service.get(build.id)
        assert done.state is BuildState.BUILT, done.error
        assert in_registry(registry.url, build.image)
        assert done.attempts == 1  # the executor ran once
    finally:
        registry.stop()
