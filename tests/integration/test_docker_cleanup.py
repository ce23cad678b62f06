"""A local build on the Docker daemon leaves neither its image nor unbounded build cache
on the host (issue 26): the image is removed once pushed (the registry has it) and the
daemon's build cache is pruned to ``local.docker_build_cache_bytes``, whether the build
succeeded or failed.

The cache record the prune must take is made here (a BuildKit build of a few MB,
unique to the test), so the test sees the prune on a fresh machine too. The daemon is
shared: the prune removes the least recently used unused records of everyone's cache,
never one in use (BuildKit's rule), which no test depends on.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.settings import Settings
from testkit.components import DOCKER, GitServer, Registry, dockerfile, in_registry

from .test_pipeline import wait_finished

StartService = Callable[[Settings], Any]

BOUND = 0
"""Bytes of build cache the service is told to keep: none, so every unused record goes.
With a bound above 0 BuildKit prunes in its garbage-collection mode, least recently used
first and in batches; under a cache of a few GB a record made seconds before was once
left (1 run of 6), so which records such a prune takes is BuildKit's to decide and not
asserted here. The parameter named for each API version is the unit tests' (pure)."""


def cache_descriptions() -> list[str]:
    """The descriptions of the daemon's build cache records (``docker system df -v``)."""
    out = subprocess.run(
        [DOCKER, "system", "df", "-v", "--format", "{{json .BuildCache}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [str(record.get("Description", "")) for record in json.loads(out) or []]


def make_cache_record(tmp_path: Path) -> str:
    """A build cache record of 2 MB in the Docker daemon, by a BuildKit build whose
    image is removed at once; returns the marker its description carries."""
    marker = f"cleanup-probe-{uuid.uuid4().hex}"
    context = tmp_path / "probe"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM local/debian:bookworm\nRUN head -c 2000000 /dev/urandom > /{marker}\n"
    )
    iidfile = tmp_path / "probe.iid"
    subprocess.run(
        [DOCKER, "build", "-q", "--iidfile", str(iidfile), str(context)],
        check=True,
        capture_output=True,
        env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"},
    )
    subprocess.run([DOCKER, "rmi", iidfile.read_text().strip()], check=True, capture_output=True)
    return marker


def in_daemon(image: str) -> bool:
    inspect = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, check=False)
    return inspect.returncode == 0


@pytest.mark.anyio
@pytest.mark.parametrize(("step", "state"), [("RUN true", "built"), ("RUN exit 3", "failed")])
async def test_a_build_leaves_no_image_and_a_bounded_build_cache(
    step: str,
    state: str,
    git_server: GitServer,
    registry: Registry,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    marker = make_cache_record(tmp_path)
    assert any(marker in description for description in cache_descriptions())
    repo = git_server.create_repo(f"cleanup-{state}-{unique}", {"Dockerfile": dockerfile(step)})
    settings = make_settings(local={"docker_build_cache_bytes": BOUND})
    service = await start_service(settings)
    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id, within=600)

    build = service.get(outcome.build.id)
    assert build.state is BuildState(state), build.error
    assert in_registry(registry.url, build.image) is (state == "built")
    assert not in_daemon(build.image)
    assert not any(marker in description for description in cache_descriptions())
