"""``registry``: where images are pushed and looked up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from .base import Section


class RegistrySettings(Section):
    url: str | None = None
    """Base URL of the registry's HTTP API (``https://registry.example.org``). Default:
    derived from the host of ``image_prefix``, over plain HTTP for loopback hosts and
    HTTPS otherwise."""

    username: str | None = None
    """User name for the registry: with ``password``, the one credential setting for
    pushes (every executor) and the "does this image exist" check. The local executor
    gives each build a ``config.json`` made from it; the Kubernetes executor's build pods
    read ``kubernetes.docker_config_secret`` (the Helm chart makes that Secret from
    these values)."""

    password: SecretStr | None = None
    """Password or token for ``username``."""

    docker_config: Path | None = None
    """A docker ``config.json`` whose ``auths`` entry for the registry host holds the
    credentials; an alternative to ``username``/``password`` for the check and the
    pushes. Read again whenever the file changes (rotated tokens need no restart);
    each local build pushes with the file as it is when it starts."""

    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the registry before the check counts as failed (a failed
    check is an error, never taken for "image missing")."""

    cache_seconds: float = Field(default=3600.0, ge=0)
    """How long a positive "image exists" answer is remembered in memory."""

    @model_validator(mode="after")
    def _check_pair(self) -> RegistrySettings:
        if self.password is not None and not self.username:
            raise ValueError("registry.password is set but registry.username is not")
        return self
