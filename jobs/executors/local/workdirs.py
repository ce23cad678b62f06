"""One working directory per local build, removed on every ending (issue #12).

repo2docker clones into ``tempfile.mkdtemp(prefix="repo2docker")`` and removes the
clone only when it ends normally: a cancel, a timeout, a kill or a crash left whole
checkouts under ``$TMPDIR`` until the disk filled. Each build now runs with
``TMPDIR`` set to ``<root>/<build id>/tmp``, so its clone and every temporary file of
repo2docker, git and the Docker client land there, and the directory goes when the
build ends.

Who owns a directory is an advisory lock (``flock``) on ``<root>/<build id>/lock``,
held by the process that runs the build for as long as it runs. The kernel drops it
when that process dies however it dies, so at start-up ``sweep`` removes exactly the
directories nobody holds: those of dead builds, never one that another live process
(``binderhub-service build`` on the same state file) is using. The lock file's inode
is checked after locking, so a directory removed and made again in between is not
taken for the one locked.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_CLAIM_TRIES = 50
_CLAIM_PAUSE_SECONDS = 0.1


class WorkDirBusy(Exception):
    """Another live process holds the build's working directory."""


@dataclass(frozen=True)
class WorkDir:
    """A claimed working directory: ``tmp`` is the build's ``TMPDIR``."""

    path: Path
    fd: int

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"


def _lock(path: Path) -> int | None:
    """An fd holding the lock of ``path`` (a build's directory), or None when another
    process holds it or the directory went away meanwhile."""
    try:
        fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path / "lock").st_ino == os.fstat(fd).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class WorkDirs:
    """The working directories of local builds, one per build id under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, build_id: str) -> Path:
        return self.root / build_id

    async def claim(self, build_id: str) -> WorkDir:
        """Lock and return the build's directory with an empty ``tmp`` in it (what an
        earlier attempt of the build left is removed first).

        Raises ``WorkDirBusy`` when another live process holds it."""
        path = self.path_for(build_id)
        for _ in range(_CLAIM_TRIES):
            path.mkdir(exist_ok=True)
            fd = _lock(path)
            if fd is not None:
                break
            # another process's sweep is removing a dead attempt's directory
            await asyncio.sleep(_CLAIM_PAUSE_SECONDS)
        else:
            raise WorkDirBusy(f"{path} is in use by another process")
        workdir = WorkDir(path, fd)
        try:
            if workdir.tmp.exists():
                await asyncio.to_thread(_remove, workdir.tmp)
            workdir.tmp.mkdir()
        except BaseException:
            os.close(fd)
            raise
        return workdir

    async def release(self, workdir: WorkDir) -> None:
        """Remove the directory and everything in it, then let go of its lock.

        The removal runs on a thread: a checkout can be gigabytes."""
        try:
            await asyncio.to_thread(_remove, workdir.path)
        finally:
            os.close(workdir.fd)

    async def sweep(self) -> list[str]:
        """Remove the directories of builds that no live process runs; returns their
        build ids. Safe while builds run here or in other processes."""
        removed = []
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            fd = _lock(entry)
            if fd is None:
                continue
            try:
                await asyncio.to_thread(_remove, entry)
            finally:
                os.close(fd)
            removed.append(entry.name)
        if removed:
            log.info("removed the working directories of %d stopped builds", len(removed))
        return removed
