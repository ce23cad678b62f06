"""Only the commit's own failures are remembered, and not forever (issue #12, items 1
and 7): real repo2docker builds against a real registry, behind a proxy that fails
pushes while told to, and against a Docker daemon that is not there."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.settings import Settings

from .components import GitServer, Registry, dockerfile, in_registry
from .failing_registry import MANIFEST_PUTS, failing_registry
from .test_pipeline import wait_finished

StartService = Callable[..., Any]
pytestmark = pytest.mark.anyio


async def test_a_push_the_registry_refuses_is_not_remembered(
    git_server: GitServer,
    registry: Registry,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(
        f"push500-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} > /tmp/mark")}
    )
    # dockerd retries failed layer uploads for ~50 s; a failed manifest PUT is the same
    # "received unexpected HTTP status: 500" at once (see failing_registry)
    with failing_registry(registry, MANIFEST_PUTS) as proxy:
        service = await start_service(make_settings(image_prefix=f"{proxy.host}/t{unique}-"))
        first = await service.request(repo.url, "main")
        assert first.build is not None
        await wait_finished(service, first.build.id)
        failed = service.get(first.build.id)
        assert failed.state is BuildState.FAILED
        assert failed.error == (
            f"pushing {first.image} failed: received unexpected HTTP status: "
            "500 Internal Server Error"
        )
        assert not failed.error_remembered
        assert proxy.refused > 0

        proxy.failing = False
        again = await service.request(repo.url, "main")
        assert again.status == "created"
        assert again.build is not None
        await wait_finished(service, again.build.id)
        assert service.get(again.build.id).state is BuildState.BUILT
        assert in_registry(registry.url, again.image.replace(proxy.host, registry.host))


async def test_a_failing_step_is_remembered_until_it_expires(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"step-{unique}", {"Dockerfile": dockerfile("RUN false")})
    now = [1_000_000_000.0]
    service = await start_service(
        make_settings(limits={"failure_memory": 600}), clock=lambda: now[0]
    )
    first = await service.request(repo.url, "main")
    assert first.build is not None
    await wait_finished(service, first.build.id)
    failed = service.get(first.build.id)
    assert failed.error == (
        "a Dockerfile step failed: The command '/bin/sh -c false' returned a non-zero code: 1"
    )
    assert failed.error_remembered

    now[0] += 599
    refused = await service.request(repo.url, "main")
    assert refused.status == "failed-before"
    assert refused.build is not None
    assert refused.build.id == failed.id

    now[0] += 1
    expired = await service.request(repo.url, "main")
    assert expired.status == "created"
    assert expired.build is not None
    await wait_finished(service, expired.build.id)
    assert service.get(expired.build.id).state is BuildState.FAILED


async def test_no_failure_is_remembered_with_a_memory_of_zero(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"zero-{unique}", {"Dockerfile": dockerfile("RUN false")})
    service = await start_service(make_settings(limits={"failure_memory": 0}))
    first = await service.request(repo.url, "main")
    assert first.build is not None
    await wait_finished(service, first.build.id)
    assert service.get(first.build.id).error_remembered  # the commit's, but not kept
    again = await service.request(repo.url, "main")
    assert again.status == "created"
    assert again.build is not None
    await service.cancel(again.build.id)


async def test_an_unreachable_docker_daemon_is_named_and_not_remembered(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"nodaemon-{unique}", {"Dockerfile": dockerfile()})
    # repo2docker.command is how the executor runs repo2docker; env sets its environment
    command = ["env", f"DOCKER_HOST=unix:///nonexistent/{unique}.sock"]
    service = await start_service(
        make_settings(repo2docker={"command": [*command, sys.executable, "-m", "repo2docker"]})
    )
    first = await service.request(repo.url, "main")
    assert first.build is not None
    await wait_finished(service, first.build.id)
    failed = service.get(first.build.id)
    assert failed.state is BuildState.FAILED
    assert failed.error is not None
    assert failed.error.startswith(
        "the Docker daemon is unreachable: Container engine initialization error: "
        "('Check if docker is running on the host.'"
    )
    assert not failed.error_remembered
    again = await service.request(repo.url, "main")
    assert again.status == "created"
    assert again.build is not None
    await wait_finished(service, again.build.id)
