"""A deadline per phase (issue 20, item 3): real repo2docker 2026.4 builds on a buildkitd
of this module, pushing to a registry with authentication, once through a proxy that
accepts the image's push but never answers the layer cache's export, once from a git
server that accepts connections and never answers.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.repo2docker.command import cache_ref
from jobs.repo2docker.log_lines import NO_CACHE_YET
from jobs.service import BuildService
from jobs.settings import Settings, load_settings
from testkit.buildkit import BuildKitDaemon, push_base_image, start_buildkitd
from testkit.components import GitServer, Registry, dockerfile

from .stalling_registry import stalling_registry
from .test_pipeline import wait_finished

pytestmark = pytest.mark.anyio
StartService = Callable[..., Any]
BUILD_TIMEOUT = 240.0
"""Far longer than any phase deadline of these tests: a build that ends for one of those
ends long before it."""


@pytest.fixture(scope="module")
def buildkitd(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[BuildKitDaemon]:
    daemon = start_buildkitd(tmp_path_factory.mktemp("buildkitd"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def base_image(auth_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    return push_base_image(auth_registry, tmp_path_factory.mktemp("docker-config"))


@pytest.fixture
def settings_for(
    auth_registry: Registry, buildkitd: BuildKitDaemon, tmp_path: Path, unique: str
) -> Callable[..., Settings]:
    assert auth_registry.auth is not None
    user, password = auth_registry.auth

    def make(registry_host: str, **limits: Any) -> Settings:
        return load_settings(
            None,
            image_prefix=f"{registry_host}/t{unique}-",
            state_path=tmp_path / "state" / "builds.sqlite",
            registry={"username": user, "password": password},
            buildkit={"host": buildkitd.address},
            limits={"build_timeout": BUILD_TIMEOUT, "phase_timeouts": limits},
        )

    return make


class SilentGitServer:
    """Accepts connections on 127.0.0.1 and never answers (until stopped)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def stop(self) -> None:
        self._socket.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_git_server() -> Iterator[SilentGitServer]:
    server = SilentGitServer()
    yield server
    server.stop()


async def run_build(service: BuildService, url: str, ref: str = "main") -> str:
    outcome = await service.request(url, ref)
    assert outcome.status == "created", outcome
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id, within=BUILD_TIMEOUT + 60)
    return outcome.build.id


async def test_a_silent_cache_export_after_the_push_is_cut_and_the_build_is_built(
    git_server: GitServer,
    auth_registry: Registry,
    settings_for: Callable[..., Settings],
    start_service: StartService,
    base_image: str,
    unique: str,
) -> None:
    with stalling_registry(auth_registry) as proxy:
        base = base_image.replace(auth_registry.host, proxy.host)
        repo = git_server.create_repo(
            f"stall-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} > /x", base=base)}
        )
        service = await start_service(settings_for(proxy.host, cache_export=3))
        done = service.get(await run_build(service, repo.url))
        assert done.state is BuildState.BUILT, done.error
        assert done.error is None
        assert proxy.stalled >= 1  # the cache's manifest never got an answer
        assert await service.registry.has_image(done.image, use_cache=False)
        assert not await service.registry.has_image(cache_ref(done.image), use_cache=False)
        log = [message for _, message in service.store.logs(done.id)]
        # the repository's first build: its missing layer cache is a note, not an ERROR
        assert any(re.fullmatch(rf"#\d+ {NO_CACHE_YET}", message) for message in log)
        assert not [message for message in log if "ERROR" in message]
        assert (
            "the layer cache export did not finish within 3 seconds"
            " (limits.phase_timeouts.cache_export) after the image was pushed; it was cut;"
            f" {done.image} is in the registry, so the build is built"
        ) in log


async def test_a_git_server_that_never_answers_fails_at_the_fetch_deadline(
    silent_git_server: SilentGitServer,
    registry: Registry,
    settings_for: Callable[..., Settings],
    start_service: StartService,
) -> None:
    service = await start_service(settings_for(registry.host, fetch=3))
    sha = "0123456789abcdef0123456789abcdef01234567"  # taken as given: no ls-remote
    url = f"git://127.0.0.1:{silent_git_server.port}/never"
    failed = service.get(await run_build(service, url, sha))
    assert failed.state is BuildState.FAILED
    assert failed.error == (
        "fetching the repository did not finish within 3 seconds (limits.phase_timeouts.fetch)"
    )
    assert not failed.error_remembered
    assert silent_git_server.accepted  # git did connect, and waited
