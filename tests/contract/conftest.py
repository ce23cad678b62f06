"""Each contract test runs against a fake of ``tests/fakes`` and against the real
component it stands in for; the real runs are marked ``integration`` (they start a
registry, a git daemon and repo2docker builds)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from testkit.components import GitServer, Registry, start_git_server, start_registry
from testkit.postgres import Postgres, start_postgres
from tests.conftest import ROOT, failed

IMPLEMENTATIONS = ["fake", pytest.param("real", marks=pytest.mark.integration)]
"""The ``params`` of a fixture that gives a fake or a real implementation."""


@pytest.fixture(scope="session")
def real_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    for script in ("ensure-docker.sh", "ensure-base-image.sh", "ensure-test-tools.sh"):
        subprocess.run([ROOT / "scripts" / script], check=True)
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = start_git_server(tmp_path_factory.mktemp("git") / "repos")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_postgres() -> Iterator[Postgres]:
    """Debian's PostgreSQL on a free port, for the session (scripts/ensure-postgres.sh)."""
    server = start_postgres()
    yield server
    server.remove()


@pytest.fixture
def postgres_log(request: pytest.FixtureRequest, real_postgres: Postgres) -> Iterator[Postgres]:
    """``real_postgres``, whose log is printed when the test fails."""
    yield real_postgres
    if failed(request):
        print(f"--- PostgreSQL log ---\n{real_postgres.log()}")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
