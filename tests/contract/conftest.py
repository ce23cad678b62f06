"""Each contract test runs against a fake of ``tests/fakes`` and against the real
component it stands in for; the real runs are marked ``integration`` (they start a
registry, a git daemon and repo2docker builds)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from testkit.components import GitServer, Registry, start_git_server, start_registry
from tests.conftest import ROOT

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


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
