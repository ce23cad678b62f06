"""repo2docker's DockerEngine for builds without a Docker daemon (engine name ``buildkit``).

repo2docker 2025.08+ builds with ``docker buildx build --progress plain [--push] … <path>``
(``repo2docker/docker.py``), but its engine first runs ``docker version``, which fails
where no Docker daemon answers (a build pod that reaches a BuildKit daemon over the
network). This engine asks only for ``docker buildx version`` and, when ``BUILDKIT_HOST``
is set, builds on a buildx ``remote`` builder for that address (``builders.py`` reads
the environment), made once per run: its ``docker buildx create`` also shows that buildx is
there, so no ``docker buildx version`` is asked then (each docker CLI call costs 0.15-0.25 s
of a build pod's start on a busy node, bench/README.md).
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
    _selected: dict[str, str] | None = None

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
        store to look in (repo2docker pushes anyway). Its builder is made now, so that
        a missing buildx or a bad setting is reported before the build starts."""
        if os.environ.get("BUILDKIT_HOST"):
            self._builder_selected()
            return None
        return super().inspect_image(image)

    def _builder_selected(self) -> dict[str, str]:
        """The environment that selects the remote builder of ``BUILDKIT_HOST`` ({}
        without one), made on first use (``ensure_builder``). When that fails, a missing
        buildx is named first (``container_cli``), else the setup's error."""
        if self._selected is not None:
            return self._selected
        try:
            builder = remote_builder(os.environ)
            selected = {} if builder is None else ensure_builder(builder, os.environ)
        except (BuilderSetupError, OSError) as e:
            _ = self.container_cli  # raises, naming a missing docker CLI or buildx
            raise self._fail(str(e)) from None
        if builder is not None:
            self._buildx_checked = True  # `docker buildx create` ran
        self._selected = selected
        return selected

    def build(self, **kwargs: Any) -> Iterator[Any]:
        selected = self._builder_selected()
        try:
            builder = remote_builder(os.environ)
            if builder is not None:
                probe_daemon(builder, os.environ, PROBE_TIMEOUT_SECONDS)
        except BuilderSetupError as e:
            raise self._fail(str(e)) from None
        with _environment(selected):
            yield from super().build(**kwargs)
