"""Fixtures for tests against real components: Docker daemon, registries, git server,
repo2docker. ``make test`` installs and starts what these need; run directly,
the session fixture runs the same scripts."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.factory import make_service
from jobs.service import BuildService
from jobs.settings import Settings, load_settings
from testkit.components import (
    GitServer,
    Registry,
    ServiceProcess,
    free_port,
    legacy_repo2docker,
    start_git_server,
    start_registry,
)
from tests.conftest import failed

from .forge_standins import FORGE_TOKEN, GitHubStandIn, GitLabStandIn
from .tiny_images import remove_made
from .token_registry import TokenService, start_token_registry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_AUTH = ("builder", "correct horse battery staple")
API_TOKEN = "rw-token-for-tests"
READ_TOKEN = "ro-token-for-tests"


def token_settings(token: str, name: str, scopes: list[str]) -> dict[str, Any]:
    return {"name": name, "sha256": hashlib.sha256(token.encode()).hexdigest(), "scopes": scopes}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_ready() -> Iterator[None]:
    for script in ("ensure-docker.sh", "ensure-base-image.sh", "ensure-test-tools.sh"):
        subprocess.run([ROOT / "scripts" / script], check=True)
    yield
    remove_made()  # the tiny images the session's tests made (tiny_images)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_ready: None) -> Iterator[Registry]:
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[Registry]:
    server = start_registry(tmp_path_factory.mktemp("auth-registry"), auth=REGISTRY_AUTH)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[tuple[Registry, TokenService]]:
    server, tokens = start_token_registry(
        tmp_path_factory.mktemp("token-registry"), credentials=REGISTRY_AUTH
    )
    yield server, tokens
    server.stop()
    tokens.stop()


@pytest.fixture(scope="session")
def hub_like_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[tuple[Registry, TokenService]]:
    """A token registry that answers 401 for repositories that do not exist yet, as
    Docker Hub does."""
    server, tokens = start_token_registry(
        tmp_path_factory.mktemp("hub-like-registry"), credentials=REGISTRY_AUTH, hide_missing=True
    )
    yield server, tokens
    server.stop()
    tokens.stop()


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = start_git_server(tmp_path_factory.mktemp("git") / "repos")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _component_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the logs of the components a failed test used."""
    yield
    if not failed(request):
        return
    for name in ("registry", "auth_registry", "git_server"):
        if name in request.fixturenames:
            component = request.getfixturevalue(name)
            print(f"\n----- {name} log -----\n{component.log()}")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def with_legacy_repo2docker(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with builds by repo2docker 2024.7.0 unless ``values["repo2docker"]``
    says otherwise (its keys win): the tests written for 2024.7.0 keep it explicitly."""
    return {**values, "repo2docker": {**legacy_repo2docker(), **values.get("repo2docker", {})}}


@pytest.fixture
def make_settings(tmp_path: Path, registry: Registry, unique: str) -> Callable[..., Settings]:
    """Settings for one test: its own state file and its own image prefix; repo2docker
    2024.7.0 (``with_legacy_repo2docker``)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "image_prefix": f"{registry.host}/t{unique}-",
            "state_path": tmp_path / "state" / "builds.sqlite",
        }
        values.update(overrides)
        return load_settings(None, **with_legacy_repo2docker(values))

    return make


@pytest.fixture
async def start_service() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start BuildServices for a test; every one is closed at the end."""
    services: list[BuildService] = []

    async def start(settings: Settings, **options: Any) -> BuildService:
        service = make_service(settings, **options)
        await service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.close()


@pytest.fixture
def start_server(
    tmp_path: Path, registry: Registry, unique: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``binderhub-service serve`` processes with a config file (and ``env`` added
    to their environment; repo2docker 2024.7.0 unless ``repo2docker`` says otherwise);
    logs on failure."""
    servers: list[ServiceProcess] = []

    def start(*, env: dict[str, str] | None = None, **settings: Any) -> ServiceProcess:
        port = free_port()
        values: dict[str, Any] = {
            "listen": f"127.0.0.1:{port}",
            "image_prefix": f"{registry.host}/t{unique}-",
            "state_path": str(tmp_path / "state" / "builds.sqlite"),
            "auth": {
                "tokens": [
                    token_settings(API_TOKEN, "tests", ["builds:read", "builds:write"]),
                    token_settings(READ_TOKEN, "reader", ["builds:read"]),
                ]
            },
        }
        values.update(settings)
        config = tmp_path / f"config-{len(servers)}.yml"
        config.write_text(yaml.safe_dump(with_legacy_repo2docker(values)))
        server = ServiceProcess(
            config, tmp_path / f"service-{len(servers)}.log", port, token=API_TOKEN, env=env or {}
        )
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
    if failed(request):
        for server in servers:
            print(f"\n----- service log ({server.config.name}) -----\n{server.log()}")


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    """A GitHub API stand-in (tests/integration/forge_standins.py) on a free port."""
    standin = GitHubStandIn(FORGE_TOKEN)
    yield standin
    standin.stop()


@pytest.fixture
def gitlab() -> Iterator[GitLabStandIn]:
    """A GitLab API stand-in on a free port."""
    standin = GitLabStandIn(FORGE_TOKEN)
    yield standin
    standin.stop()
