"""Ask a Mercurial repository's server which changeset a ref names (issue 25):
``identify``, with the ``hg`` installed with the service. The I/O edge of
``jobs.sources.hg``.

Facts from Mercurial's documentation: ``hg identify -r <rev> <source>`` asks a remote
repository for one revision (a branch, bookmark, tag or changeset id) without cloning;
``-T '{id}'`` prints its full 40-hex id. ``HGPLAIN`` and an empty ``HGRCPATH`` keep the
user's and the system's configuration (extensions, hooks, aliases) out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import ProviderUnavailable, RecordNotFound
from .hg import CHANGESET_RE, DEFAULT_REF, hg_version
from .records import RecordSource, RecordVersion

IDENTIFY_TIMEOUT_SECONDS = 60.0
_NOT_FOUND = (
    "not found",
    "does not appear to be an hg repository",
    "http error 404",
    "http error 410",
)


def hg_command() -> str:
    """The ``hg`` installed with the service (beside its Python), else ``hg`` on PATH."""
    beside = Path(sys.executable).parent / "hg"
    return str(beside) if beside.exists() else (shutil.which("hg") or "hg")


async def identify(
    source: RecordSource,
    *,
    hg: str | None = None,
    env: Mapping[str, str] | None = None,
    seconds: float = IDENTIFY_TIMEOUT_SECONDS,
) -> RecordVersion:
    """Ask ``source``'s server which changeset its ref names (``hg identify``).
    ``RecordNotFound`` (422) when the server has no such repository or ref;
    ``ProviderUnavailable`` (503) when it cannot be asked or answers nothing usable
    within ``seconds``. ``hg``: the command (``hg_command()``); ``env``: the
    environment its PATH, LANG and proxies are taken from (the service's)."""
    ref = source.version or DEFAULT_REF
    base = env if env is not None else os.environ
    run_env = {k: v for k, v in base.items() if k in ("PATH", "LANG") or "proxy" in k.lower()}
    run_env.update({"HGPLAIN": "1", "HGRCPATH": "", "HOME": "/nonexistent"})
    command = [hg or hg_command(), "identify", "-r", ref, "-T", "{id}\n", "--", source.record]
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
