"""Ask a Mercurial repository's server which changeset a ref names (issue 25):
``identify``, with the ``hg`` installed with the service. The I/O edge of
``jobs.sources.hg``.

Facts from Mercurial's documentation (``hg help identify``, ``hg help config``) and its
``mercurial/url.py``: ``hg identify -r <rev> <source>`` asks a remote repository for one
revision (a branch, bookmark, tag or changeset id) without cloning; ``-T '{id}'`` prints
its full 40-hex id. ``HGPLAIN`` and an empty ``HGRCPATH`` keep the user's and the
system's configuration (extensions, hooks, aliases) out, so everything else is given
with ``--config``: ``http_proxy.host`` (the proxy's URL; hg sends ``localhost`` and
``127.0.0.1`` direct, as the build's hg does), ``web.cacerts`` (the authorities a
server's certificate must chain to; without it, the system's). hg reads the environment's
``http_proxy`` (lower case only, for every scheme) and ``no_proxy`` when no
``http_proxy.host`` is configured. It speaks plain HTTP to its proxy, ``https://`` proxy
URLs included (a ``CONNECT`` in the clear, then TLS to the server).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import HostNotHandled, ProviderUnavailable, RecordNotFound
from .hg import CHANGESET_RE, DEFAULT_REF, hg_version
from .records import RecordSource, RecordVersion

IDENTIFY_TIMEOUT_SECONDS = 60.0
_NOT_FOUND = (
    "not found",
    "does not appear to be an hg repository",
    "http error 404",
    "http error 410",
)


@dataclass(frozen=True)
class HgEgress:
    """How the service's ``hg`` reaches a repository's server: the egress and trust of
    the providers' HTTP client (``jobs.factory.make_records``), so that a deployment
    whose only way out is ``providers.proxy``, or whose server has a private CA, resolves
    Mercurial refs as it resolves every other record.

    ``proxy``: ``providers.proxy`` (None: the environment's proxies, as hg reads them);
    ``cacerts``: a PEM file of the public authorities and ``ca_bundle``'s
    (``jobs.trust.Trust.bundle_file``; None: the system's authorities)."""

    proxy: str | None = None
    cacerts: Path | None = None


DIRECT = HgEgress()
"""The environment's proxies (as hg reads them) and the system's authorities."""


def egress_options(egress: HgEgress) -> tuple[list[str], dict[str, str]]:
    """The ``--config`` options and the environment that make ``hg`` use ``egress``.
    A proxy with a user name or password is given as the ``http_proxy`` environment
    variable instead of ``http_proxy.host``: a process's arguments are readable by every
    user of the machine, its environment only by its own. Raises ``HostNotHandled`` for
    an ``https://`` proxy, to which hg would send its ``CONNECT`` (and a password) in the
    clear. Pure."""
    options: list[str] = []
    env: dict[str, str] = {}
    if egress.proxy is not None:
        parts = urlsplit(egress.proxy)
        if parts.scheme.lower() != "http":
            raise HostNotHandled(
                "Mercurial repositories cannot be resolved through providers.proxy: it is "
                "an https:// proxy, and hg speaks only plain HTTP to a proxy"
            )
        if parts.username is not None or parts.password is not None:
            env["http_proxy"] = egress.proxy
        else:
            options += ["--config", f"http_proxy.host={egress.proxy}"]
    if egress.cacerts is not None:
        options += ["--config", f"web.cacerts={egress.cacerts}"]
    return options, env


def hg_invocation(base: Mapping[str, str], egress: HgEgress) -> tuple[list[str], dict[str, str]]:
    """The options (``egress_options``) and the whole environment of the service's
    ``hg``: ``PATH`` and ``LANG`` of ``base`` (the service's), no configuration file, no
    home; the proxy variables of ``base`` only without ``egress.proxy`` (with it, only
    ``egress_options``'s). Pure."""
    options, proxy_env = egress_options(egress)
    env = {
        k: v
        for k, v in base.items()
        if k in ("PATH", "LANG") or (egress.proxy is None and "proxy" in k.lower())
    }
    env.update({"HGPLAIN": "1", "HGRCPATH": "", "HOME": "/nonexistent", **proxy_env})
    return options, env


def hg_command() -> str:
    """The ``hg`` installed with the service (beside its Python), else ``hg`` on PATH."""
    beside = Path(sys.executable).parent / "hg"
    return str(beside) if beside.exists() else (shutil.which("hg") or "hg")


async def identify(
    source: RecordSource,
    *,
    egress: HgEgress = DIRECT,
    hg: str | None = None,
    env: Mapping[str, str] | None = None,
    seconds: float = IDENTIFY_TIMEOUT_SECONDS,
) -> RecordVersion:
    """Ask ``source``'s server which changeset its ref names (``hg identify``), through
    ``egress``. ``RecordNotFound`` (422) when the server has no such repository or ref;
    ``ProviderUnavailable`` (503) when it cannot be asked or answers nothing usable
    within ``seconds``; ``HostNotHandled`` (422) when ``egress`` cannot be used by hg.
    ``hg``: the command (``hg_command()``); ``env``: the environment its PATH, LANG and
    proxies are taken from (the service's)."""
    ref = source.version or DEFAULT_REF
    options, run_env = hg_invocation(env if env is not None else os.environ, egress)
    command = [hg or hg_command(), *options, "identify", "-r", ref, "-T", "{id}\n"]
    command += ["--", source.record]
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=run_env,
        )
    except OSError as e:
        raise ProviderUnavailable(f"hg could not be run: {type(e).__name__}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ProviderUnavailable(f"{source.host} did not answer hg identify in time") from None
    changeset = out.decode(errors="replace").strip()
    if process.returncode == 0 and CHANGESET_RE.match(changeset):
        return hg_version(source, changeset)
    said = err.decode(errors="replace").strip().lower()
    if process.returncode != 0 and "unknown revision" in said:
        raise RecordNotFound(f"Mercurial repository {source.record} has no ref {ref!r}")
    if process.returncode != 0 and any(marker in said for marker in _NOT_FOUND):
        raise RecordNotFound(
            f"Mercurial repository {source.record} does not exist or is not public"
        )
    raise ProviderUnavailable(f"{source.host} could not be asked for {ref!r} with hg identify")
