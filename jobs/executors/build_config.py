"""The docker configuration directory of one local build (repo2docker 2025.8+).

buildx writes its builders into ``$DOCKER_CONFIG/buildx`` and reads push credentials
from ``$DOCKER_CONFIG/config.json``; each build gets a directory of its own in its
working directory (``workdirs.py``), so concurrent builds never share buildx's state
and a read-only configured ``config.json`` stays untouched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..repo2docker import docker_config_json
from ..settings import Settings


def _user_plugins() -> Path:
    """Where the docker CLI of the service's user finds its CLI plugins."""
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(config) / "cli-plugins"


def write_docker_config(directory: Path, settings: Settings) -> Path:
    """Make ``directory`` a docker configuration directory for one build and return it:
    ``config.json`` with the registry's credentials (``registry.username``/``password``
    as a Basic ``auth`` for the image prefix's host, else a copy of
    ``registry.docker_config``, else none), and ``cli-plugins`` linked to the user's
    (the system's plugin directories are found anyway). Raises ``OSError`` when the
    configured ``config.json`` cannot be read, ``ValueError`` when it is not JSON."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    registry = settings.registry
    config: dict[str, object] | None = None
    if registry.username and registry.password:
        config = docker_config_json(
            settings.registry_host, registry.username, registry.password.get_secret_value()
        )
    elif registry.docker_config:
        text = registry.docker_config.read_text(encoding="utf-8")
        try:
            config = json.loads(text)
        except ValueError as e:
            raise ValueError(f"registry.docker_config {registry.docker_config}: {e}") from None
    if config is not None:
        target = directory / "config.json"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f)
    plugins = _user_plugins()
    if plugins.is_dir() and not (directory / "cli-plugins").exists():
        (directory / "cli-plugins").symlink_to(plugins)
    return directory
