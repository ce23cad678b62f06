"""The docker configuration directory of one local build (repo2docker 2025.8+).

buildx writes its builders into ``$DOCKER_CONFIG/buildx`` and reads push credentials
from ``$DOCKER_CONFIG/config.json``; each build gets a directory of its own in its
working directory (``workdirs.py``), so concurrent builds never share buildx's state
and a read-only configured ``config.json`` stays untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import registry_auth
from ..settings import Settings


def _user_plugins() -> Path:
    """Where the docker CLI of the service's user finds its CLI plugins."""
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(config) / "cli-plugins"


def write_docker_config(directory: Path, settings: Settings) -> Path:
    """Make ``directory`` a docker configuration directory for one build and return it:
    ``config.json`` from the one credential setting as it is now
    (``registry_auth.build_docker_config``: ``registry.username``/``password`` for the
    image prefix's host, else ``registry.docker_config`` read again), none without
    credentials, and ``cli-plugins`` linked to the user's (the system's plugin
    directories are found anyway). Raises ``RegistryAuthError`` when the configured
    ``config.json`` cannot be read or is not a JSON object."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = registry_auth.build_docker_config(settings)
    if content is not None:
        registry_auth.write_docker_config(directory, content)
    plugins = _user_plugins()
    if plugins.is_dir() and not (directory / "cli-plugins").exists():
        (directory / "cli-plugins").symlink_to(plugins)
    return directory
