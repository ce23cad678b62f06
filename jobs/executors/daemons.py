"""Whether the daemon builds run on answers: the Docker daemon (``GET /_ping`` on its
socket), or a BuildKit daemon (it accepts connections). Both executors ask.

The daemon is found as repo2docker's Docker client finds it: ``DOCKER_HOST`` from the
build's environment (``unix://`` socket, or ``tcp://`` with TLS when
``DOCKER_TLS_VERIFY`` is set, its certificates in ``DOCKER_CERT_PATH``), else the
default socket.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path

import httpx

from ..errors import TemporaryError

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def docker_host(env: Mapping[str, str]) -> str:
    """The daemon address builds use. Pure."""
    return env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
    certs = Path(env.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    return context


def docker_client(env: Mapping[str, str], within: float) -> tuple[httpx.AsyncClient, str] | None:
    """An HTTP client for the Docker daemon named by ``env`` and the base URL of its API;
    None for addresses other than ``unix://``, ``tcp://``, ``http(s)://`` (``ssh://``).
    Raises OSError or ssl.SSLError when the TLS files cannot be read."""
    host = docker_host(env)
    scheme, _, rest = host.partition("://")
    if scheme == "unix":
        transport = httpx.AsyncHTTPTransport(uds=rest)
        base = "http://docker"
    elif scheme in ("tcp", "http", "https"):
        tls = scheme == "https" or bool(env.get("DOCKER_TLS_VERIFY"))
        verify: ssl.SSLContext | bool = _tls_context(env) if tls else False
        transport = httpx.AsyncHTTPTransport(verify=verify)
        base = f"{'https' if tls else 'http'}://{rest.rstrip('/')}"
    else:
        return None
    return httpx.AsyncClient(transport=transport, timeout=within), base


async def ping_docker(env: Mapping[str, str], within: float) -> None:
    """Return when the daemon named by ``env`` answers ``/_ping`` with 200 within
    ``within`` seconds; raise ``TemporaryError`` naming the daemon otherwise.
    Addresses other than ``unix://``, ``tcp://``, ``http(s)://`` (``ssh://``) are not
    checked."""
    host = docker_host(env)
    try:
        made = docker_client(env, within)
        if made is None:
            return
        client, base = made
        async with client:
            response = await client.get(f"{base}/_ping")
    except (httpx.HTTPError, OSError, ssl.SSLError) as e:
        reason = str(e) or type(e).__name__
        raise TemporaryError(f"the Docker daemon at {host} is not answering: {reason}") from e
    if response.status_code != 200:
        raise TemporaryError(
            f"the Docker daemon at {host} answered HTTP {response.status_code} to a ping"
        )


async def ping_buildkit(host: str, within: float) -> None:
    """Return when the BuildKit daemon at ``host`` (``unix:///path`` or
    ``tcp://host:port``) accepts a connection within ``within`` seconds; raise
    ``TemporaryError`` naming it otherwise. (TLS is not checked here: a refused
    certificate fails the build with a message saying so.)"""
    try:
        async with asyncio.timeout(within):
            if host.startswith("unix://"):
                _, writer = await asyncio.open_unix_connection(host.removeprefix("unix://"))
            else:
                name, _, port = host.removeprefix("tcp://").rstrip("/").rpartition(":")
                _, writer = await asyncio.open_connection(name.strip("[]"), int(port))
            writer.close()
            await writer.wait_closed()
    except (OSError, ValueError, TimeoutError) as e:
        reason = str(e) or type(e).__name__
        raise TemporaryError(f"the BuildKit daemon at {host} is not answering: {reason}") from e
