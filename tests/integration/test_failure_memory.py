"""Only the commit's own failures are remembered, and not forever (issue #12, items 1
and 7): real repo2docker builds against a real registry, behind a proxy that fails
pushes while told to, and against a Docker daemon (or Kubernetes API) that is not
there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.errors import TemporaryError
from jobs.executors.kubernetes.executor import KubernetesExecutor
from jobs.model import Build, BuildState
from jobs.settings import Settings
from testkit.components import (
    GitServer,
    Registry,
    dockerfile,
    free_port,
    in_registry,
    legacy_repo2docker,
)

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
        make_settings(repo2docker={"command": [*command, *legacy_repo2docker()["command"]]})
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


async def test_an_unreachable_kubernetes_api_is_named_and_not_remembered(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    settings = make_settings(
        executor="kubernetes", kubernetes={"kubeconfig": str(kubeconfig), "namespace": "builds"}
    )
    executor = KubernetesExecutor(settings)
    build = Build(
        id="b" * 32,
        repo="git://127.0.0.1/r",
        ref="main",
        ref_kind="branch",
        sha="0" * 40,
        image=f"127.0.0.1:1/r:{'0' * 40}",
        name="r2d-r",
        state=BuildState.QUEUED,
        trigger="api",
        created_at=0.0,
    )
    try:
        # temporary, before anything started: the coordinator tries it again later
        # (tests/unit/test_service_retry.py), and nothing is remembered
        with pytest.raises(TemporaryError, match="kubernetes: cannot reach the API server"):
            await executor.run(build, on_log=lambda line: None, on_start=lambda pid: None)
    finally:
        await executor.close()
