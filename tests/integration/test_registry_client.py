"""RegistryClient against real registries: anonymous, Basic (htpasswd) and Bearer
token authentication, and a registry that is down."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from jobs.errors import RegistryAuthError, RegistryError
from jobs.registry.auth import DockerConfigCredentials, make_docker_config
from jobs.registry.client import RegistryClient
from testkit.components import DOCKER, Registry, free_port

from .token_registry import TokenService

pytestmark = pytest.mark.anyio


TINY_IMAGE = "local/tiny:latest"


def tiny_image() -> str:
    """A one-file image: pushes in milliseconds, unlike the 200 MB base image."""
    if subprocess.run([DOCKER, "image", "inspect", TINY_IMAGE], capture_output=True).returncode:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            data = b"tiny\n"
            info = tarfile.TarInfo("tiny.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        subprocess.run(
            [DOCKER, "import", "-", TINY_IMAGE],
            input=buffer.getvalue(),
            check=True,
            capture_output=True,
        )
    return TINY_IMAGE


def push(registry: Registry, name: str) -> str:
    """Push a tiny image as ``name`` with the docker CLI, logged in if needed."""
    image = f"{registry.host}/{name}"
    config = Path(f"/tmp/docker-config-{registry.host.replace(':', '-')}")
    env = {"DOCKER_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    if registry.auth:
        subprocess.run(
            [DOCKER, "login", "-u", registry.auth[0], "--password-stdin", registry.host],
            input=registry.auth[1],
            text=True,
            check=True,
            capture_output=True,
            env=env,
        )
    subprocess.run([DOCKER, "tag", tiny_image(), image], check=True, env=env)
    subprocess.run([DOCKER, "push", image], check=True, capture_output=True, env=env)
    return image


async def test_anonymous_registry(registry: Registry, unique: str) -> None:
    image = push(registry, f"anon-{unique}:v1")
    client = RegistryClient(registry.url)
    try:
        assert await client.has_image(image)
        assert not await client.has_image(f"{registry.host}/anon-{unique}:v2")
        assert not await client.has_image(f"{registry.host}/never-pushed-{unique}:v1")
    finally:
        await client.aclose()


async def test_basic_auth_registry(auth_registry: Registry, unique: str) -> None:
    assert auth_registry.auth is not None
    image = push(auth_registry, f"basic-{unique}:v1")
    client = RegistryClient(auth_registry.url, credentials=auth_registry.auth)
    try:
        assert await client.has_image(image)
        assert not await client.has_image(f"{auth_registry.host}/basic-{unique}:v2")
    finally:
        await client.aclose()
    for credentials in (None, ("builder", "wrong")):
        client = RegistryClient(auth_registry.url, credentials=credentials)
        try:
            with pytest.raises(RegistryAuthError):
                await client.has_image(image)
        finally:
            await client.aclose()


async def test_bearer_token_registry(
    token_registry: tuple[Registry, TokenService], unique: str
) -> None:
    registry, tokens = token_registry
    assert registry.auth is not None
    image = push(registry, f"token-{unique}:v1")
    client = RegistryClient(registry.url, credentials=registry.auth)
    try:
        before = len(tokens.requests)
        assert await client.has_image(image, use_cache=False)
        assert not await client.has_image(f"{registry.host}/token-{unique}:v2")
        # one token for the repository's pull scope, reused for the second question
        asked = tokens.requests[before:]
        assert len(asked) == 1
        assert asked[0]["query"]["scope"] == [f"repository:token-{unique}:pull"]
        assert asked[0]["query"]["service"] == ["test-registry"]
    finally:
        await client.aclose()
    for credentials in (None, ("builder", "wrong")):
        client = RegistryClient(registry.url, credentials=credentials)
        try:
            with pytest.raises(RegistryAuthError, match="refused"):
                await client.has_image(image)
        finally:
            await client.aclose()


async def test_a_repository_hidden_behind_401_is_missing(
    hub_like_registry: tuple[Registry, TokenService], unique: str
) -> None:
    """Docker Hub answers 401 insufficient_scope, not 404, for a repository that does
    not exist yet, even to valid credentials; that is "missing". Wrong credentials
    stay an error that names them."""
    registry, tokens = hub_like_registry
    assert registry.auth is not None
    image = push(registry, f"hub-{unique}:v1")
    never_pushed = f"never-pushed-{unique}"
    # the registry really does answer 401 to a token issued for that scope
    token = tokens.issue([f"repository:{never_pushed}:pull"])
    async with httpx.AsyncClient() as http:
        raw = await http.head(
            f"{registry.url}/v2/{never_pushed}/manifests/v1",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert raw.status_code == 401
    assert 'error="insufficient_scope"' in raw.headers["www-authenticate"]
    client = RegistryClient(registry.url, credentials=registry.auth)
    try:
        assert await client.has_image(image, use_cache=False)
        assert not await client.has_image(f"{registry.host}/hub-{unique}:v2")
        assert not await client.has_image(f"{registry.host}/{never_pushed}:v1")
    finally:
        await client.aclose()
    client = RegistryClient(registry.url, credentials=("builder", "wrong"))
    try:
        with pytest.raises(RegistryAuthError, match="refused the registry credentials"):
            await client.has_image(f"{registry.host}/{never_pushed}:v1")
    finally:
        await client.aclose()


async def test_a_registry_that_is_down_is_an_error_not_a_miss() -> None:
    client = RegistryClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    try:
        with pytest.raises(RegistryError, match="could not be reached"):
            await client.has_image("127.0.0.1:1/x:y")
    finally:
        await client.aclose()


async def test_rotated_docker_config_is_used_without_a_restart(
    token_registry: tuple[Registry, TokenService], unique: str, tmp_path: Path
) -> None:
    """A docker config.json rewritten as a Kubernetes Secret volume rewrites it (a new
    file, a symlink swapped in) is read again by the same client (issue #14)."""
    registry, _ = token_registry
    assert registry.auth is not None
    user, password = registry.auth
    image = push(registry, f"rotate-{unique}:v1")
    config = tmp_path / "config.json"

    def write(secret: str, name: str) -> None:
        target = tmp_path / name
        target.write_text(json.dumps(make_docker_config(registry.host, user, secret)))
        link = tmp_path / f"{name}.link"
        link.symlink_to(target)
        os.replace(link, config)

    write("expired-token", "first")
    client = RegistryClient(
        registry.url, credentials=DockerConfigCredentials(config, registry.host)
    )
    try:
        with pytest.raises(RegistryAuthError, match="refused the registry credentials"):
            await client.has_image(image, use_cache=False)
        write(password, "second")
        assert await client.has_image(image, use_cache=False)
        write("expired-again", "third")  # tokens the old credentials earned are dropped
        with pytest.raises(RegistryAuthError, match="refused the registry credentials"):
            await client.has_image(image, use_cache=False)
    finally:
        await client.aclose()
