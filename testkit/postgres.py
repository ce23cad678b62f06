"""A real PostgreSQL server for tests and benchmarks (Debian's, through
``scripts/ensure-postgres.sh``): its own data directory and port on 127.0.0.1, never
a system cluster. ``stop``/``start`` and ``pause``/``resume`` make the outages the
failure tests need."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .components import ROOT, free_port

SCRIPT = ROOT / "scripts" / "ensure-postgres.sh"
PASSWORD = "bhs-test"  # a server on 127.0.0.1 for one test session


@dataclass
class Postgres:
    directory: Path
    port: int
    fast: bool = True
    """fsync off: tests never survive a power loss anyway (benchmarks turn it on)."""

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        env = {**os.environ, "BHS_POSTGRES_FAST": "1" if self.fast else "0"}
        subprocess.run(
            [SCRIPT, "start", str(self.directory), str(self.port), PASSWORD], check=True, env=env
        )

    def stop(self) -> None:
        """A clean, fast shutdown (``pg_ctl -m fast``): sessions are ended."""
        subprocess.run([SCRIPT, "stop", str(self.directory)], check=True)

    def _postmaster(self) -> int:
        return int((self.directory / "postmaster.pid").read_text().split()[0])

    def _processes(self) -> list[int]:
        """The postmaster and every process it started (backends, workers)."""
        main = self._postmaster()
        children = subprocess.run(
            ["pgrep", "-P", str(main)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [main, *(int(pid) for pid in children)]

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers (a server
        that hangs, or a network that drops every packet)."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; its URL."""
        name = name or f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-20000:] if path.exists() else ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        Path(f"{self.directory}.initdb.log").unlink(missing_ok=True)


def start_postgres(*, fast: bool = True) -> Postgres:
    """A new server on a free port, its data in a new directory under /var/tmp (the
    server's user, ``postgres`` when we are root, must reach it). ``remove`` it."""
    directory = Path(tempfile.mkdtemp(prefix="bhs-postgres-", dir="/var/tmp"))
    server = Postgres(directory, free_port(), fast=fast)
    server.start()
    return server
