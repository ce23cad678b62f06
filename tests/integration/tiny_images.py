"""Tiny images of their own (one file each: a manifest each), pushed to the test
registries; every one made is removed from the Docker daemon when the session ends
(``conftest``)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from testkit.components import DOCKER, Registry

MADE: list[str] = []
"""Every local image ``distinct_image`` made in this session."""


def remove_made() -> None:
    for name in sorted(set(MADE)):
        subprocess.run([DOCKER, "rmi", name], capture_output=True)
    MADE.clear()


def distinct_image(content: str) -> str:
    """A one-file image whose layer holds ``content``: a manifest of its own."""
    name = f"local/retention-{content}:latest"
    MADE.append(name)
    if subprocess.run([DOCKER, "image", "inspect", name], capture_output=True).returncode:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            data = content.encode()
            info = tarfile.TarInfo("content.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        subprocess.run(
            [DOCKER, "import", "-", name], input=buffer.getvalue(), check=True, capture_output=True
        )
    return name


def push_as(registry: Registry, local: str, name: str) -> str:
    """Push ``local`` as ``<registry>/<name>``, logged in if the registry wants it."""
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
    subprocess.run([DOCKER, "tag", local, image], check=True, env=env)
    subprocess.run([DOCKER, "push", image], check=True, capture_output=True, env=env)
    subprocess.run([DOCKER, "rmi", image], check=True, capture_output=True, env=env)
    return image
