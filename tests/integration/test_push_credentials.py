"""One credential setting serves the check and the push of local builds (issue #14),
against the token-authenticated registry (as Docker Hub, GHCR, Quay and Harbor are)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.redaction import BUILD_DIR
from jobs.registry.auth import make_docker_config
from jobs.settings import Settings
from testkit.components import GitServer, Registry, dockerfile

from .test_pipeline import StartService, wait_finished
from .token_registry import TokenService

pytestmark = pytest.mark.anyio

PROBE = r"""
set -e
if [ "$1" = --version ]; then echo 2024.7.0; exit 0; fi
echo "DOCKER_CONFIG=$DOCKER_CONFIG"
mkdir "$DOCKER_CONFIG/buildx"
echo "config.json=$(tr -d '\n ' < "$DOCKER_CONFIG/config.json")"
echo "config.json-sha256=$(sha256sum < "$DOCKER_CONFIG/config.json" | cut -d ' ' -f 1)"
exit 3
"""
"""Stands in for repo2docker: shows what a build gets and that buildx could write
where it must (``$DOCKER_CONFIG/buildx``), then fails (the image is never pushed)."""


def probe_of(messages: list[str], key: str) -> str:
    (value,) = [m.partition("=")[2] for m in messages if m.startswith(f"{key}=")]
    return value


async def test_each_build_gets_a_writable_docker_config_from_the_password(
    git_server: GitServer,
    token_registry: tuple[Registry, TokenService],
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    registry, _ = token_registry
    assert registry.auth is not None
    user, password = registry.auth
    repo = git_server.create_repo(f"probe-{unique}", {"Dockerfile": dockerfile()})
    service = await start_service(
        make_settings(
            image_prefix=f"{registry.host}/t{unique}-",
            registry={"username": user, "password": password},
            repo2docker={"command": ["sh", "-c", PROBE, "repo2docker"]},
        )
    )
    directories = []
    for ref in ("main", "HEAD"):
        outcome = await service.request(repo.url, ref, force=True)
        assert outcome.build is not None
        await wait_finished(service, outcome.build.id)
        assert service.get(outcome.build.id).state is BuildState.FAILED
        messages = [m for _, m in service.store.logs(outcome.build.id)]
        # the stored log shows the file with its secret masked (jobs/redaction.py) ...
        config = json.loads(probe_of(messages, "config.json"))
        assert config == {"auths": {registry.host: {"auth": "***"}}}
        # ... and the build had it whole
        expected = make_docker_config(registry.host, user, password)
        sha256 = hashlib.sha256((json.dumps(expected, indent=2) + "\n").encode()).hexdigest()
        assert probe_of(messages, "config.json-sha256") == sha256
        logged = probe_of(messages, "DOCKER_CONFIG")
        assert logged == f"{BUILD_DIR}/docker"
        directories.append(service.settings.state_path.parent / "builds" / outcome.build.id)
    # one directory per build, gone with the build's working directory
    assert directories[0] != directories[1]
    assert not any(d.exists() for d in directories)


@pytest.mark.parametrize("setting", ["password", "docker_config"])
async def test_either_form_of_the_setting_checks_and_pushes(
    git_server: GitServer,
    token_registry: tuple[Registry, TokenService],
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
    setting: str,
) -> None:
    """repo2docker pushes with the build's config.json; our client checks with the same
    setting: a second request for the commit is a cache hit."""
    registry, tokens = token_registry
    assert registry.auth is not None
    user, password = registry.auth
    values: dict[str, Any] = {"username": user, "password": password}
    if setting == "docker_config":
        file = tmp_path / "config.json"
        file.write_text(json.dumps(make_docker_config(registry.host, user, password)))
        values = {"docker_config": str(file)}
    repo = git_server.create_repo(f"{setting}-{unique}", {"Dockerfile": dockerfile()})
    service = await start_service(
        make_settings(image_prefix=f"{registry.host}/t{unique}-", registry=values)
    )
    before = len(tokens.requests)
    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.BUILT, build.error
    # the push asked the token service for the push scope with these credentials
    scopes = [" ".join(r["query"].get("scope", [])) for r in tokens.requests[before:]]
    assert any(f"t{unique}-" in s and "push" in s for s in scopes), scopes
    assert (await service.request(repo.url, "main")).status == "cached"
