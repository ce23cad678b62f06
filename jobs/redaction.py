"""No stored or served text quotes a secret or the service's internals (issue 20).

Whatever a build prints becomes its log, and its last lines its error; both are stored
and served (API, page, BinderHub stream). ``BuildService`` passes every log line and
error through ``redact`` before it stores them, whichever executor ran the build:

- every secret the settings hold (each ``SecretStr``: forge tokens, credential passwords,
  the registry password, webhook secrets, the hub's token and cookie secret), in the forms
  it is sent or written in (as is, URL-escaped, JSON-escaped, base64; a credential's
  ``user:password`` in base64, as in ``Authorization: Basic`` and docker's ``config.json``,
  that of ``registry.docker_config`` included), and any password in a URL, and any
  ``Authorization`` header's value, become ``***``;
- a local build's working directory becomes ``<build dir>``, the service's state
  directory ``<state dir>``, the service's virtualenv (and repo2docker's) ``<python>``;
- the BuildKit daemon's address and name (``buildkit.host``, ``kubernetes.buildkit_host``,
  their TLS server names and certificate directory) become ``<buildkit>``, buildx
  builder names of builder/'s engine (``bhs-`` and 12 hex digits) ``<builder>``, a
  ``DOCKER_HOST`` other than the default ``<docker>``, and a ``registry.url`` on a host
  other than the images' ``<registry>``.

Secrets shorter than ``MIN_SECRET`` characters, and directories with fewer than two
components (``/``, ``/tmp``), are not replaced: they would mangle every line.
``redactions_for`` and ``redact`` are pure; ``Redactor`` adds reading
``registry.docker_config`` again when it changes.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, SecretStr

from .forges.credentials import credential_set
from .settings import Settings

SECRET = "***"  # noqa: S105 - the mask, not a password
BUILD_DIR = "<build dir>"
STATE_DIR = "<state dir>"
PYTHON = "<python>"
BUILDKIT = "<buildkit>"
BUILDER = "<builder>"
DOCKER = "<docker>"
REGISTRY = "<registry>"

MIN_SECRET = 4
"""Secrets shorter than this are not replaced."""
MIN_NAME = 4
"""Host names shorter than this are replaced only as part of an address."""
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

BUILDS = "builds"
"""The local executor's working directories: ``<state dir>/builds/<build id>``
(``executors/local/executor.py``)."""

_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+):[^/\s@]+@")
_AUTHORIZATION = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)[A-Za-z0-9+/=._~-]+")
_BUILDER_NAME = re.compile(r"\bbhs-[0-9a-f]{12}\b")


@dataclass(frozen=True)
class Redactions:
    """What ``redact`` replaces, in order: (pattern, replacement)."""

    rules: tuple[tuple[re.Pattern[str], str], ...]


def redact(text: str, redactions: Redactions) -> str:
    """``text`` with every rule of ``redactions`` applied, in order. Pure."""
    for pattern, replacement in redactions.rules:
        text = pattern.sub(replacement, text)
    return text


def secret_forms(secret: str) -> set[str]:
    """The texts ``secret`` may be seen as: itself, URL-escaped, JSON-escaped and in
    base64 (standard and URL-safe alphabets). Pure."""
    encoded = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        base64.b64encode(encoded).decode(),
        base64.urlsafe_b64encode(encoded).decode(),
    }


def pair_forms(username: str, password: str) -> set[str]:
    """The password, and ``username:password`` in base64 (HTTP Basic, docker's
    ``config.json``). Pure."""
    return secret_forms(password) | {base64.b64encode(f"{username}:{password}".encode()).decode()}


def _secret_values(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)


def settings_secrets(settings: Settings) -> set[str]:
    """Every secret ``settings`` hold, in each form it may be seen in: each ``SecretStr``
    (``secret_forms``), each git credential's ``user:password`` and the registry's (in
    base64, ``pair_forms``). Pure."""
    found: set[str] = set()
    for secret in _secret_values(settings):
        found |= secret_forms(secret)
    for credential in credential_set(settings.forges):
        found |= pair_forms(credential.username, credential.password)
    registry = settings.registry
    if registry.username and registry.password:
        found |= pair_forms(registry.username, registry.password.get_secret_value())
    return found


def docker_config_secrets(content: bytes) -> set[str]:
    """The ``auth`` values of a docker ``config.json``'s ``auths`` and the passwords in
    them (``secret_forms``); nothing for a file that is not such JSON. Pure."""
    try:
        auths = json.loads(content).get("auths", {})
    except (ValueError, AttributeError):
        return set()
    found: set[str] = set()
    for entry in auths.values() if isinstance(auths, dict) else ():
        auth = entry.get("auth") if isinstance(entry, dict) else None
        if not isinstance(auth, str) or not auth:
            continue
        found.add(auth)
        try:
            _, _, password = base64.b64decode(auth).decode().partition(":")
        except ValueError:
            continue
        if password:
            found |= secret_forms(password)
    return found


def _deep_enough(path: str) -> bool:
    return len(PurePosixPath(path).parts) >= 3  # "/", and at least two components


def _address_forms(address: str) -> list[str]:
    """An address (``tcp://host:port``, ``unix:///path``, a host name) and its parts a
    message may quote: the address, ``host:port``, the host, the socket path."""
    forms = [address]
    scheme, sep, rest = address.partition("://")
    if not sep:
        return [address] if len(address) >= MIN_NAME else []
    if scheme == "unix":
        forms.append(rest)
    else:
        forms.append(rest.rstrip("/"))
        host = urlsplit(address).hostname
        if host and len(host) >= MIN_NAME and not _shared_host(host):
            forms.append(host)
    return forms


def _shared_host(host: str) -> bool:
    """An address other things have too (an IP address, ``localhost``): alone it is not
    replaced, or every registry on it would be (``127.0.0.1:5000/…`` in image names)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _literal(texts: Iterable[str], replacement: str) -> list[tuple[re.Pattern[str], str]]:
    ordered = sorted({text for text in texts if text}, key=len, reverse=True)
    if not ordered:
        return []
    return [(re.compile("|".join(map(re.escape, ordered))), replacement)]


def _path_rule(path: str, replacement: str) -> tuple[re.Pattern[str], str]:
    return re.compile(re.escape(path.rstrip("/")) + r"(?![\w.-])"), replacement


def _internal_names(settings: Settings, service_env: Mapping[str, str]) -> dict[str, list[str]]:
    buildkit: list[str] = []
    for address in (settings.buildkit.host, settings.kubernetes.buildkit_host):
        if address:
            buildkit += _address_forms(address)
    for name in (settings.buildkit.tls_servername, settings.kubernetes.buildkit_tls_servername):
        if name and len(name) >= MIN_NAME:
            buildkit.append(name)
    if settings.buildkit.tls_dir and _deep_enough(str(settings.buildkit.tls_dir)):
        buildkit.append(str(settings.buildkit.tls_dir))
    names = {BUILDKIT: buildkit, DOCKER: [], REGISTRY: []}
    docker_host = service_env.get("DOCKER_HOST")
    if docker_host and docker_host != DEFAULT_DOCKER_HOST:
        names[DOCKER] = _address_forms(docker_host)
    if settings.registry.url:
        url = settings.registry.url.rstrip("/")
        images = urlsplit(f"//{settings.registry_host}").hostname
        if urlsplit(url).hostname != images:
            names[REGISTRY] = _address_forms(url)
    return names


def _python_prefixes(settings: Settings) -> set[str]:
    """The service's virtualenv, and that of ``repo2docker.command`` when it names a
    Python (``…/bin/python``) by its absolute path."""
    prefixes = set()
    if sys.prefix != sys.base_prefix:
        prefixes.add(sys.prefix)
    command = settings.repo2docker.command
    if command and os.path.isabs(command[0]) and Path(command[0]).parent.name == "bin":
        prefixes.add(str(Path(command[0]).parent.parent))
    return {prefix for prefix in prefixes if _deep_enough(prefix)}


def redactions_for(
    settings: Settings,
    *,
    service_env: Mapping[str, str] | None = None,
    more_secrets: Iterable[str] = (),
) -> Redactions:
    """The ``Redactions`` of the service ``settings`` describe (see the module
    docstring), with ``more_secrets`` (already in every form to replace) and the
    ``DOCKER_HOST`` of ``service_env`` (default: this process's). Pure apart from
    ``sys.prefix`` and the default environment."""
    env = os.environ if service_env is None else service_env
    secrets = {s for s in settings_secrets(settings) | set(more_secrets) if len(s) >= MIN_SECRET}
    rules = _literal(secrets, SECRET)
    rules += [(_URL_PASSWORD, rf"\1:{SECRET}@"), (_AUTHORIZATION, rf"\1{SECRET}")]
    state_dir = str(settings.state_path.resolve().parent)
    if _deep_enough(state_dir):
        builds = re.escape(f"{state_dir}/{BUILDS}/") + r"[^/\s'\"]+"
        rules.append((re.compile(builds), BUILD_DIR))
        rules.append(_path_rule(state_dir, STATE_DIR))
    for prefix in sorted(_python_prefixes(settings), key=len, reverse=True):
        rules.append(_path_rule(prefix, PYTHON))
    for placeholder, names in _internal_names(settings, env).items():
        rules += _literal(names, placeholder)
    rules.append((_BUILDER_NAME, BUILDER))
    return Redactions(tuple(rules))


class Redactor:
    """``redact`` with the ``Redactions`` of ``settings``, and the credentials of
    ``registry.docker_config`` as the file is now: read again whenever it changed (its
    inode, size or modification time), as builds read it. Call it with a text."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stamp: tuple[int, int, int] | None = None
        self._redactions = redactions_for(settings)

    def _current(self) -> Redactions:
        path = self._settings.registry.docker_config
        if path is None:
            return self._redactions
        try:
            st = os.stat(path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp != self._stamp:
                more = docker_config_secrets(Path(path).read_bytes())
                self._redactions = redactions_for(self._settings, more_secrets=more)
                self._stamp = stamp
        except OSError:
            pass  # the build's own push says what is wrong with the file
        return self._redactions

    def __call__(self, text: str) -> str:
        return redact(text, self._current())
