"""What one local build gets from the service: an allow-listed environment and its own
credential files, in its working directory (issue 20).

repo2docker ran with the service's whole environment (settings, secrets, tokens) and
every forge's credentials, while a repository's symlinks could make it print any file
it can read. A build now gets:

- ``allowed_environment``: only what running repo2docker, git, the docker CLI and buildx
  needs from the service's environment (``PATH``, locale, proxies, CA bundles, the
  Docker client's daemon address); nothing else, so no service setting or secret;
- ``jobs.sources.git_policy``: git never prompts and uses only the allowed transports;
- files of its own, readable by the service's user only and removed with the working
  directory (``workdirs.py``) however the build ends: ``docker/config.json`` with the
  push credentials (buildx also keeps its builders in ``docker/``), ``git/config`` with
  the one git credential that covers the build's repository, and ``home/`` as ``HOME``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ...forges.credentials import Credential, credential_set
from ...registry import auth as registry_auth
from ...settings import Settings

ALLOWED_ENV = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        # CA bundles (Python's ssl and requests, curl and git)
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        # the Docker client's daemon (repo2docker 2024.7.0, buildx's docker driver)
        "DOCKER_HOST",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_API_VERSION",
    }
)
"""Variables of the service's environment a build gets, besides ``LC_*`` and the
proxy variables (``*_PROXY``/``*_proxy``: ``http``, ``https``, ``no``, ``all``)."""
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")

DOCKER_DIR = "docker"
GIT_CONFIG = "git/config"
HOME_DIR = "home"


def allowed_environment(service_env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``service_env`` a build may see (``ALLOWED_ENV``, ``LC_*``, the
    proxies); when the Docker client uses TLS without ``DOCKER_CERT_PATH``, that is set
    to the service user's ``~/.docker`` (the default a build's own ``HOME`` would
    change). Pure apart from ``Path.home()``."""
    env = {
        key: value
        for key, value in service_env.items()
        if key in ALLOWED_ENV or key.startswith("LC_") or key.upper() in _PROXIES
    }
    if env.get("DOCKER_TLS_VERIFY") and "DOCKER_CERT_PATH" not in env:
        env["DOCKER_CERT_PATH"] = str(Path.home() / ".docker")
    return env


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


def write_git_config(path: Path, credential: Credential | None) -> Path:
    """Write ``path`` (its directory made, owner only) as the build's git configuration
    file, mode 0600: ``credential``'s ``git_config``, or nothing without one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(credential.git_config() if credential is not None else "")
    return path


def write_build_files(workdir: Path, settings: Settings, repo: str | None) -> dict[str, str]:
    """Write the build's own files into ``workdir`` and return the environment that
    names them: ``DOCKER_CONFIG`` (``write_docker_config``), ``GIT_CONFIG_GLOBAL``
    (the credential of ``forges`` that covers where the git repository ``repo`` is
    fetched from, ``CredentialSet.best``; none for ``repo`` None, a record's build) and
    ``HOME``. Raises ``RegistryAuthError`` as ``write_docker_config`` does."""
    docker = write_docker_config(workdir / DOCKER_DIR, settings)
    credential = (
        None if repo is None else credential_set(settings.forges).best(settings.fetch_url(repo))
    )
    git_config = write_git_config(workdir / GIT_CONFIG, credential)
    home = workdir / HOME_DIR
    home.mkdir(mode=0o700, exist_ok=True)
    return {"DOCKER_CONFIG": str(docker), "GIT_CONFIG_GLOBAL": str(git_config), "HOME": str(home)}


def write_hg_config(home: Path, cacerts: Path | None) -> None:
    """Write ``home/.hgrc`` (the build's ``HOME``, mode 0600) so that the build's ``hg``
    (repo2docker's Mercurial provider) trusts ``cacerts`` (``ca_bundle`` with the public
    authorities, ``jobs.trust``): hg takes certifi's authorities when certifi is
    installed, as it is beside repo2docker, and reads no ``SSL_CERT_FILE``; its
    ``web.cacerts`` is how it is told (``hg help config.web``). Nothing without one."""
    if cacerts is None:
        return
    fd = os.open(home / ".hgrc", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"[web]\ncacerts = {cacerts}\n")
