"""Failures of the host are not the commit's (issue 20, item 2), and a commit force-pushed
away is named (item 5): real repo2docker 2026.4 builds on BuildKit daemons short of disk
(their state on a small tmpfs) or of memory (their build containers under a cgroup with a
small limit), pushing to a registry with authentication. Each failure ends temporary and
not remembered; once the resource is there again, the next request builds.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import Settings, load_settings
from testkit.buildkit import BuildKitDaemon, push_base_image, start_buildkitd
from testkit.components import GitServer, Registry, dockerfile, git
from testkit.constrained import SmallDiskBuildKit, SmallMemoryBuildKit

from .test_pipeline import wait_finished

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs and makes cgroups (root)"),
]
StartService = Callable[..., Any]


@pytest.fixture(scope="module")
def base_image(auth_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    return push_base_image(auth_registry, tmp_path_factory.mktemp("docker-config"))


@pytest.fixture
def settings_for(auth_registry: Registry, tmp_path: Path, unique: str) -> Callable[..., Settings]:
    """The service's defaults (repo2docker 2026.4, the registry layer cache) on the
    BuildKit daemon at ``address``, pushing to the authenticated registry."""
    assert auth_registry.auth is not None
    user, password = auth_registry.auth

    def make(address: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "image_prefix": f"{auth_registry.host}/t{unique}-",
            "state_path": tmp_path / "state" / "builds.sqlite",
            "registry": {"username": user, "password": password},
            "buildkit": {"host": address},
            **overrides,
        }
        return load_settings(None, **values)

    return make


@pytest.fixture
def small_disk(tmp_path: Path, docker_ready: None) -> Iterator[SmallDiskBuildKit]:
    # the base image takes about 290 MiB of it (its layer and its snapshot)
    disk = SmallDiskBuildKit(tmp_path / "buildkitd", "512m")
    yield disk
    disk.stop()


@pytest.fixture
def small_memory(tmp_path: Path, docker_ready: None) -> Iterator[SmallMemoryBuildKit]:
    memory = SmallMemoryBuildKit(
        tmp_path / "buildkitd", f"bhs-test-{uuid.uuid4().hex[:8]}", 64 * 1024 * 1024
    )
    yield memory
    memory.stop()


async def build(service: BuildService, url: str, ref: str = "main") -> str:
    outcome = await service.request(url, ref)
    assert outcome.status == "created", outcome
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id, within=300)
    return outcome.build.id


async def test_a_full_disk_is_not_the_commits_failure(
    git_server: GitServer,
    settings_for: Callable[..., Settings],
    start_service: StartService,
    small_disk: SmallDiskBuildKit,
    base_image: str,
    unique: str,
) -> None:
    step = "RUN dd if=/dev/zero of=/big bs=1M count=600"  # 600 MiB: more than is left
    repo = git_server.create_repo(
        f"disk-{unique}", {"Dockerfile": dockerfile(step, base=base_image)}
    )
    service = await start_service(settings_for(small_disk.daemon.address))
    failed = service.get(await build(service, repo.url))
    assert failed.state is BuildState.FAILED
    # BuildKit's summary of the step keeps the end of its output: "dd: " may be cut off
    assert failed.error is not None
    assert re.fullmatch(
        r"a disk is full: (dd: )?error writing '/big': No space left on device", failed.error
    ), small_disk.daemon.log()
    assert not failed.error_remembered

    small_disk.resize("2g")  # the operator made room
    built = service.get(await build(service, repo.url))
    assert built.state is BuildState.BUILT, built.error
    assert await service.registry.has_image(built.image, use_cache=False)


async def test_a_step_killed_for_memory_is_not_the_commits_failure(
    git_server: GitServer,
    settings_for: Callable[..., Settings],
    start_service: StartService,
    small_memory: SmallMemoryBuildKit,
    base_image: str,
    unique: str,
) -> None:
    step = "RUN head -c 300m /dev/zero | tail"  # tail holds the whole line: 300 MiB
    repo = git_server.create_repo(
        f"oom-{unique}", {"Dockerfile": dockerfile(step, base=base_image)}
    )
    service = await start_service(settings_for(small_memory.daemon.address))
    failed = service.get(await build(service, repo.url))
    assert failed.state is BuildState.FAILED
    assert failed.error == (
        'the build was killed, most likely out of memory: failed to solve: process "/bin/sh -c'
        ' head -c 300m /dev/zero | tail" did not complete successfully: exit code: 137'
    ), small_memory.daemon.log()
    assert not failed.error_remembered
    log = [message for _, message in service.store.logs(failed.id)]
    assert any(message.endswith(" Killed") for message in log)  # sh saw the OOM kill

    small_memory.set_limit(1024 * 1024 * 1024)  # the node got more memory
    built = service.get(await build(service, repo.url))
    assert built.state is BuildState.BUILT, built.error


@pytest.fixture(scope="module")
def buildkitd(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[BuildKitDaemon]:
    daemon = start_buildkitd(tmp_path_factory.mktemp("buildkitd"))
    yield daemon
    daemon.stop()


async def test_a_commit_force_pushed_away_is_named_and_not_remembered(
    git_server: GitServer,
    settings_for: Callable[..., Settings],
    start_service: StartService,
    buildkitd: BuildKitDaemon,
    base_image: str,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"gone-{unique}", {"Dockerfile": dockerfile(base=base_image)})
    gone = git("rev-parse", "HEAD", cwd=repo.path)
    # the branch is rewritten and the old commit collected, as after a force-push
    git("commit", "-q", "--amend", "-m", "rewritten", cwd=repo.path)
    git("reflog", "expire", "--expire=now", "--all", cwd=repo.path)
    git("gc", "-q", "--prune=now", cwd=repo.path)
    assert git("rev-parse", "HEAD", cwd=repo.path) != gone

    service = await start_service(settings_for(buildkitd.address))
    for _ in range(2):  # not remembered: asked again, it is tried again
        failed = service.get(await build(service, repo.url, gone))
        assert failed.state is BuildState.FAILED
        assert failed.error == (
            f"commit {gone} is no longer in the repository"
            f" (fatal: Could not parse object '{gone}'.)"
        )
        assert not failed.error_remembered
