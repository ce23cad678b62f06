"""``repo2docker`` and ``buildkit``: what builds run, and with what."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from .base import Section

BUILDX_SINCE = (2025, 8)
"""repo2docker builds with ``docker buildx`` from 2025.08 on (its changelog)."""


class Repo2DockerSettings(Section):
    command: list[str] | None = None
    """Command that runs repo2docker for the local executor. Default: the repo2docker
    installed with this service (``python -m repo2docker``)."""

    version: str = Field(default="2026.4.0", pattern=r"^\d+\.\d+(\.\d+)?$")
    """repo2docker version builds use; the service refuses to start when the local
    executor's repo2docker (the one installed with it, or ``command --version``) is
    another. 2025.8 and later build with ``docker buildx`` through the ``buildkit``
    engine of ``builder/`` (see ``buildkit``); 2024.7.0, the newest that builds through
    the Docker API, stays selectable: ``scripts/ensure-repo2docker.sh 2024.7.0`` makes a
    virtualenv with it, to name in ``command``."""

    extra_args: list[str] = []
    """Extra command-line arguments, placed before the repository URL."""

    target_repo_dir: str | None = None
    """Where the repository's content goes in the image (``--target-repo-dir``);
    default: the user's home directory, repo2docker's own default."""

    user_id: int = Field(default=1000, ge=1)
    """UID of the image's default user (``--user-id``)."""

    user_name: str = Field(default="jovyan", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    """Name of the image's default user (``--user-name``)."""

    @property
    def uses_buildx(self) -> bool:
        """Whether ``version`` (``2026.4.0``, ``2024.07.0``) builds with ``docker
        buildx``."""
        numbers = [int(part) for part in re.findall(r"\d+", self.version)[:2]]
        return tuple(numbers) >= BUILDX_SINCE


class BuildKitSettings(Section):
    host: str | None = None
    """BuildKit daemon that builds of repo2docker 2025.8+ use, through buildx's
    ``remote`` driver: ``unix:///path`` or ``tcp://host:port`` (given to the ``buildkit``
    engine as ``BUILDKIT_HOST``). ``make run`` starts one
    (``scripts/ensure-buildkitd.sh``) and sets this. Default: buildx's current builder,
    i.e. the Docker daemon's own BuildKit (buildx's ``docker`` driver), which cannot
    export a cache."""

    tls_dir: Path | None = None
    """Directory with ``ca.pem``, ``cert.pem`` and ``key.pem`` for mTLS to a ``tcp://``
    ``host`` (``BUILDKIT_TLS_DIR``)."""

    tls_servername: str | None = None
    """Name the daemon's certificate must carry, when not the host of ``host``."""

    cache: bool = True
    """With ``host``: import and export BuildKit's layer cache through the registry,
    one cache per repository next to its images (``<image repository>:buildcache``),
    so that a commit changing only content reuses the environment's layers on any
    builder. A failed export leaves a warning in the log and the build succeeds; a
    missing cache is no error."""

    cache_image_manifest: bool = False
    """Export the cache as an OCI image manifest (``image-manifest=true``,
    ``oci-mediatypes=true``) rather than a manifest list of layers: Amazon ECR refuses
    the latter, and without this every export to ECR fails (with a warning) and every
    rebuild starts cold. Other registries take either."""

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and not (
            value.startswith(("unix:///", "tcp://")) and value not in ("tcp://",)
        ):
            raise ValueError("must be unix:///path or tcp://host:port")
        return value


DEFAULT_DOCKER_BUILD_CACHE_BYTES = 10_000_000_000
"""10 GB, as ``scripts/ensure-buildkitd.sh`` keeps for the embedded BuildKit daemon."""


class LocalSettings(Section):
    docker_build_cache_bytes: int = Field(default=DEFAULT_DOCKER_BUILD_CACHE_BYTES, ge=0)
    """Bytes of build cache the Docker daemon keeps after each local build that ran
    on it (``buildkit.host`` unset): the least recently used cache beyond this is
    pruned (``POST /build/prune``). After each such build the image it built is also
    removed from the daemon (the registry holds it). A failed clean-up is logged and
    never fails the build. 0 keeps none. Builds on ``buildkit.host`` are bounded by
    that daemon's own garbage collection."""
