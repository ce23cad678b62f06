"""repo2docker's DockerEngine for builds without a Docker daemon (engine name ``buildkit``).

repo2docker 2025.08+ builds with ``docker buildx build --progress plain [--push] … <path>``
(``repo2docker/docker.py``), but its engine first runs ``docker version``, which fails
where no Docker daemon answers (a build pod that reaches a BuildKit daemon over the
network). This engine asks only for ``docker buildx version`` and, when ``BUILDKIT_HOST``
is set, builds on a buildx ``remote`` builder for that address (``builders.py`` reads
the environment).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

from repo2docker.docker import DockerEngine
from repo2docker.engine import BuildError

from .builders import (
    DOCKER_CLI,
    PROBE_TIMEOUT_SECONDS,
    BuilderSetupError,
    ensure_builder,
    probe_daemon,
    remote_builder,
)

_VERSION_TIMEOUT_SECONDS = 60


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class BuildKitEngine(DockerEngine):  # type: ignore[misc]
    """DockerEngine that needs only the buildx plugin, and builds on the BuildKit daemon
    of ``BUILDKIT_HOST`` when that is set (see the module docstring)."""

    def _fail(self, message: str) -> BuildError:
        self.log.error(message + "\n", extra={"phase": "failed"})
        return BuildError(message)

    _buildx_checked = False

    @property
    def container_cli(self) -> str:
        if self._buildx_checked:
            return DOCKER_CLI
        try:
            subprocess.run(
                [DOCKER_CLI, "buildx", "version"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=_VERSION_TIMEOUT_SECONDS,
            )
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as e:
            raise self._fail(
                f"docker buildx is missing: `{DOCKER_CLI} buildx version` failed ({e}); "
                "install the buildx CLI plugin"
            ) from None
        self._buildx_checked = True
        return DOCKER_CLI

    def inspect_image(self, image: str) -> Any:
        """None when builds go to a remote BuildKit daemon: there is no local image
        store to look in (repo2docker pushes anyway)."""
        if os.environ.get("BUILDKIT_HOST"):
            _ = self.container_cli  # report a missing buildx before the build starts
            return None
        return super().inspect_image(image)

    def build(self, **kwargs: Any) -> Iterator[Any]:
        try:
            builder = remote_builder(os.environ)
            selected = {}
            if builder is not None:
                selected = ensure_builder(builder, os.environ)
                probe_daemon(builder, os.environ, PROBE_TIMEOUT_SECONDS)
        except BuilderSetupError as e:
            raise self._fail(str(e)) from None
        with _environment(selected):
            yield from super().build(**kwargs)
