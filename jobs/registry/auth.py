"""Registry credentials from one setting, for the check and for every push (issue #14).

``registry.username``/``registry.password`` or ``registry.docker_config`` (a docker
``config.json``) is the one place credentials are configured. The service's "does the
image exist" check asks ``RegistryClient`` with them; a build pushes with a
``config.json`` in its own writable ``$DOCKER_CONFIG`` (the docker CLI, buildx and
docker-py all read ``$DOCKER_CONFIG/config.json``; buildx also writes
``$DOCKER_CONFIG/buildx``, so the directory must not be a read-only mount).

Credentials that rotate (an ECR token a job rewrites into a Secret) are read again:
``DockerConfigCredentials`` re-reads the file when it changed, and each local build
gets the file's content as it is when the build starts.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from ..errors import RegistryAuthError
from ..settings import Settings

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
"""The ``auths`` key the docker CLI uses for Docker Hub (its historical index URL),
whatever host name an image uses (``docker.io/…`` or none)."""


def docker_auth_key(host: str) -> str:
    """The ``auths`` key of ``config.json`` under which docker looks up credentials for
    images on ``host`` (``host[:port]``, as in an image name). Pure."""
    return DOCKER_HUB_AUTH_KEY if host in DOCKER_HUB_HOSTS else host


def make_docker_config(host: str, username: str, password: str) -> dict[str, Any]:
    """A docker ``config.json`` (as a dict) holding ``username``/``password`` for the
    registry ``host`` (``host[:port]``): ``{"auths": {key: {"auth": base64("u:p")}}}``,
    the form ``docker login`` writes without a credential store. Pure."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {docker_auth_key(host): {"auth": auth}}}


def auth_from_docker_config(config: Any, host: str) -> tuple[str, str] | None:
    """The user and password a parsed docker ``config.json`` holds for ``host``, looked
    up under the keys docker itself would write for it; None if there is no such
    entry (or it uses a credential helper, which this service cannot run). Pure.

    Raises ``RegistryAuthError`` when the entry's ``auth`` is not base64 of ``user:password``.
    """
    auths = config.get("auths", {}) if isinstance(config, dict) else {}
    if not isinstance(auths, dict):
        return None
    keys = (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", docker_auth_key(host))
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
            except ValueError as e:
                raise RegistryAuthError(
                    f"the docker config's entry for {key} has an auth value that is not "
                    "base64 of user:password"
                ) from e
            user, sep, password = decoded.partition(":")
            if not sep:
                raise RegistryAuthError(
                    f"the docker config's entry for {key} has no ':' between user and password"
                )
            return user, password
    return None


def read_docker_config(path: Path) -> bytes:
    """The bytes of the docker config file at ``path``, checked to be a JSON object.
    Raises ``RegistryAuthError`` naming the file when it cannot be read or parsed."""
    try:
        data = path.read_bytes()
        parsed = json.loads(data)
    except (OSError, ValueError) as e:
        raise RegistryAuthError(f"cannot read docker config {path}: {e}") from e
    if not isinstance(parsed, dict):
        raise RegistryAuthError(f"docker config {path} is not a JSON object")
    return data


def credentials_from_docker_config(path: Path, host: str) -> tuple[str, str] | None:
    """The user and password the docker ``config.json`` at ``path`` holds for ``host``."""
    return auth_from_docker_config(json.loads(read_docker_config(path)), host)


class DockerConfigCredentials:
    """The credentials a docker config file holds for one host, read again whenever the
    file changed (its inode, size or modification time: a Kubernetes Secret volume
    swaps a symlink, so the path then names another inode). Call it for the current
    ``(user, password)`` or None; raises ``RegistryAuthError`` when the file cannot be read."""

    def __init__(self, path: Path, host: str) -> None:
        self._path = path
        self._host = host
        self._seen: tuple[int, int, int] | None = None
        self._credentials: tuple[str, str] | None = None

    def __call__(self) -> tuple[str, str] | None:
        try:
            st = os.stat(self._path)
        except OSError as e:
            raise RegistryAuthError(f"cannot read docker config {self._path}: {e}") from e
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._seen:
            self._credentials = credentials_from_docker_config(self._path, self._host)
            self._seen = stamp
        return self._credentials


def build_docker_config(settings: Settings) -> bytes | None:
    """The ``config.json`` a build pushes with (for its own ``$DOCKER_CONFIG``), from the
    one credential setting: ``registry.username``/``password`` made into a config for
    the image's registry host, else the content of ``registry.docker_config`` as it is
    now; None when neither is set. Raises ``RegistryAuthError`` if the file is unreadable."""
    registry = settings.registry
    if registry.username and registry.password:
        config = make_docker_config(
            settings.registry_host, registry.username, registry.password.get_secret_value()
        )
        return json.dumps(config, indent=2).encode() + b"\n"
    if registry.docker_config:
        return read_docker_config(registry.docker_config)
    return None


def write_docker_config(directory: Path, content: bytes) -> Path:
    """Write ``content`` as ``directory/config.json`` (readable by its owner only) and
    return the directory, to be the build's ``DOCKER_CONFIG``; made if missing."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "config.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return directory
