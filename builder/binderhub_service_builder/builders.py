"""The buildx builder a build uses, from its environment (the engine's interface).

The environment read (the interface the service and the builder image use):

- ``BUILDKIT_HOST``: ``tcp://host:port`` or ``unix:///path``; unset: buildx's current
  builder (on a Docker daemon, its ``docker`` driver).
- ``BUILDKIT_TLS_DIR``: a directory with ``ca.pem``, ``cert.pem``, ``key.pem`` for mTLS.
- ``BUILDKIT_TLS_SERVERNAME``: the name the daemon's certificate must carry.
- ``DOCKER_CONFIG`` (default ``~/.docker``): must be writable; buildx keeps its builders
  in ``$DOCKER_CONFIG/buildx``. Concurrent builds should each have their own.

Facts from outside: the remote driver's options (``cacert``, ``cert``, ``key``,
``servername``) and ``BUILDX_BUILDER``/``BUILDX_CONFIG`` are buildx's documented
interface (docs.docker.com/build/builders/drivers/remote/, buildx's env var reference).
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DOCKER_CLI = "docker"

TLS_FILES = {"cacert": "ca.pem", "cert": "cert.pem", "key": "key.pem"}
_SCHEMES = ("tcp://", "unix://")
_CLI_TIMEOUT_SECONDS = 60
PROBE_TIMEOUT_SECONDS = 10.0
PROBE_WAIT_SECONDS = 30.0
"""How long a daemon that refuses connections is tried again: one that is starting, or a
network that has not yet let a new build pod in (a NetworkPolicy enforcer takes a moment to
add a new pod's address to the daemon's admitted peers; issue 23)."""
RETRY_SECONDS = {"unix://": 0.1, "tcp://": 1.0}
"""How often a refused daemon is tried again, by address scheme: a Unix socket is the
daemon of the build pod itself (``buildkit-rootless``: its sidecar starts beside the builder
and listens 0.1-0.5 s after its container started, bench/README.md), cheap to ask often; a
TCP daemon is shared, asked once a second."""
SOCKET_WAIT_SECONDS = 120.0
"""How long a Unix socket's daemon (the build pod's own, starting) is waited for: as long as
the startup probe the pod's daemon had before the builder waited for it itself."""


class BuilderSetupError(ValueError):
    """The environment names a builder that cannot be used; the message says why."""


@dataclass(frozen=True)
class RemoteBuilder:
    """A buildx ``remote`` builder: its name, the daemon's address, the driver options."""

    name: str
    address: str
    driver_opts: tuple[str, ...]


def remote_builder(env: Mapping[str, str]) -> RemoteBuilder | None:
    """The remote builder ``env`` asks for, or None without ``BUILDKIT_HOST``. Pure.

    The name is ``bhs-`` and 12 hex digits of a hash of address, TLS directory and
    server name, so a changed setting gets a builder of its own. Raises
    ``BuilderSetupError`` for an address that is neither ``tcp://`` nor ``unix://``.
    (Whether the TLS files exist is checked by ``check_tls_files``.)
    """
    address = env.get("BUILDKIT_HOST", "").strip()
    if not address:
        return None
    if not address.startswith(_SCHEMES) or address in _SCHEMES:
        raise BuilderSetupError(
            f"BUILDKIT_HOST={address!r} is not a BuildKit address: "
            "expected tcp://host:port or unix:///path"
        )
    tls_dir = env.get("BUILDKIT_TLS_DIR", "").strip()
    servername = env.get("BUILDKIT_TLS_SERVERNAME", "").strip()
    opts: list[str] = []
    if tls_dir:
        opts += [f"{opt}={Path(tls_dir) / file}" for opt, file in TLS_FILES.items()]
    if servername:
        opts.append(f"servername={servername}")
    digest = hashlib.sha256(f"{address}\0{tls_dir}\0{servername}".encode()).hexdigest()
    return RemoteBuilder(name=f"bhs-{digest[:12]}", address=address, driver_opts=tuple(opts))


def create_args(builder: RemoteBuilder) -> list[str]:
    """The ``docker buildx create`` arguments (after ``docker``) for ``builder``. Pure."""
    args = ["buildx", "create", "--name", builder.name, "--driver", "remote"]
    for opt in builder.driver_opts:
        args += ["--driver-opt", opt]
    args.append(builder.address)
    return args


def check_tls_files(env: Mapping[str, str]) -> None:
    """Raise ``BuilderSetupError`` naming the files of ``BUILDKIT_TLS_DIR`` that are
    missing or unreadable; nothing without that variable."""
    tls_dir = env.get("BUILDKIT_TLS_DIR", "").strip()
    if not tls_dir:
        return
    missing = [file for file in TLS_FILES.values() if not os.access(Path(tls_dir) / file, os.R_OK)]
    if missing:
        raise BuilderSetupError(f"BUILDKIT_TLS_DIR={tls_dir} lacks readable {', '.join(missing)}")


def docker_config_dir(env: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG``, or ``~/.docker`` as the docker CLI defaults to. Pure."""
    value = env.get("DOCKER_CONFIG", "").strip()
    return Path(value) if value else Path.home() / ".docker"


def _cli(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER_CLI, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=_CLI_TIMEOUT_SECONDS,
        check=False,
    )


def ensure_builder(builder: RemoteBuilder, env: Mapping[str, str]) -> dict[str, str]:
    """Make ``builder`` exist in ``$DOCKER_CONFIG/buildx`` (idempotent; a concurrent
    creation of the same builder is taken as success) and return the environment
    variables that select it: ``BUILDX_CONFIG`` and ``BUILDX_BUILDER``.

    In a new ``$DOCKER_CONFIG`` one docker CLI call (``docker buildx create``), else
    ``docker buildx inspect`` first. Raises ``BuilderSetupError`` when ``$DOCKER_CONFIG``
    is not writable, a TLS file is missing, or ``docker buildx create`` fails (its output
    in the message); ``OSError`` when the docker CLI cannot be run. Does not contact the
    daemon: an unreachable one shows in the build's own output.
    """
    check_tls_files(env)
    config = docker_config_dir(env)
    buildx_config = config / "buildx"
    try:
        buildx_config.mkdir(parents=True, exist_ok=True)
        probe = buildx_config / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise BuilderSetupError(
            f"DOCKER_CONFIG={config} is not writable ({e.strerror or e}): "
            "buildx keeps its builders there; give builds a writable DOCKER_CONFIG"
        ) from None
    selected = {"BUILDX_CONFIG": str(buildx_config), "BUILDX_BUILDER": builder.name}
    cli_env = {**env, **selected}
    # a new $DOCKER_CONFIG (every build pod's) has no builder yet: create it without asking
    # (buildx keeps them in $BUILDX_CONFIG/instances; should that change, create fails and
    # the inspect after it finds the builder)
    fresh = not (buildx_config / "instances").exists()
    if not fresh and _cli(["buildx", "inspect", builder.name], cli_env).returncode == 0:
        return selected
    created = _cli(create_args(builder), cli_env)
    if created.returncode != 0 and _cli(["buildx", "inspect", builder.name], cli_env).returncode:
        output = (created.stderr or created.stdout).strip()
        raise BuilderSetupError(f"docker buildx create failed for {builder.address}: {output}")
    return selected


def _connect(address: str, timeout: float) -> socket.socket:
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.removeprefix("unix://"))
        except OSError:
            sock.close()
            raise
        return sock
    host, _, port = address.removeprefix("tcp://").rstrip("/").rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def _tls_context(tls_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls_dir / TLS_FILES["cacert"]))
    context.load_cert_chain(str(tls_dir / TLS_FILES["cert"]), str(tls_dir / TLS_FILES["key"]))
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse connections without it
    return context


def probe_daemon(
    builder: RemoteBuilder,
    env: Mapping[str, str],
    timeout: float,
    wait: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Connect to the daemon of ``builder`` (and, with ``BUILDKIT_TLS_DIR``, complete a
    TLS handshake with its files, then read the server's first bytes, so a refused
    client certificate shows too), within ``timeout`` seconds each step. A connection that
    fails is tried again for ``wait`` seconds (default: ``SOCKET_WAIT_SECONDS`` for a
    ``unix://`` daemon, ``PROBE_WAIT_SECONDS`` for ``tcp://``), every ``RETRY_SECONDS`` of its
    scheme; a refused certificate is not.

    buildx reports both an unreachable daemon and a refused certificate as "context
    deadline exceeded" after its own timeout; this names the cause. Raises
    ``BuilderSetupError``: "... is unreachable: ..." or "... certificate ... refused: ...".
    """
    if wait is None:
        unix = builder.address.startswith("unix://")
        wait = SOCKET_WAIT_SECONDS if unix else PROBE_WAIT_SECONDS
    deadline = time.monotonic() + wait
    every = next(v for k, v in RETRY_SECONDS.items() if builder.address.startswith(k))
    while True:
        try:
            _probe_once(builder, env, timeout)
            return
        except _Unreachable as e:
            if time.monotonic() >= deadline:
                raise BuilderSetupError(
                    f"the BuildKit daemon at {builder.address} is unreachable: {e.cause}"
                ) from None
        sleep(every)


class _Unreachable(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _probe_once(builder: RemoteBuilder, env: Mapping[str, str], timeout: float) -> None:
    try:
        sock = _connect(builder.address, timeout)
    except ValueError as e:
        raise BuilderSetupError(
            f"the BuildKit daemon at {builder.address} is unreachable: {e}"
        ) from None
    except OSError as e:
        raise _Unreachable(e) from None
    tls_dir = env.get("BUILDKIT_TLS_DIR", "").strip()
    with sock:
        if not tls_dir:
            return
        host = builder.address.removeprefix("tcp://").rpartition(":")[0].strip("[]")
        servername = env.get("BUILDKIT_TLS_SERVERNAME", "").strip() or host
        try:
            with _tls_context(Path(tls_dir)).wrap_socket(sock, server_hostname=servername) as tls:
                tls.recv(1)  # the server's HTTP/2 settings, or its alert about our certificate
        except ssl.SSLError as e:
            raise BuilderSetupError(
                f"TLS certificate refused talking to the BuildKit daemon at {builder.address} "
                f"(server name {servername}): {e}"
            ) from None
        except OSError as e:
            raise _Unreachable(e) from None
