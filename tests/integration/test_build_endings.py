"""However a local build ends, its checkout goes (issue #12, item 2).

repo2docker names its clone in the log (git's "Cloning into '…'..."): each test finds
it there, checks that it was in the build's own working directory under the state
directory, and that it is gone once the build has ended.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.model import BuildState
from jobs.redaction import BUILD_DIR
from jobs.service import BuildService
from jobs.settings import Settings
from jobs.store import Store
from testkit.components import (
    GitServer,
    Registry,
    ServiceProcess,
    dockerfile,
    legacy_repo2docker,
    wait_until,
)

from .test_cli import CLI
from .test_pipeline import wait_finished

StartService = Callable[[Settings], Any]
StartServer = Callable[..., ServiceProcess]

BIG = "x" * (4 * 1024 * 1024)
"""A file of a few MB, so that a leftover checkout is more than a stray directory."""

SLOW_STEP = "RUN sleep 30"


def checkout_in(messages: list[str], build_dir: Path) -> Path:
    """The directory repo2docker cloned into, as its log names it: in a build's working
    directory, which the stored log shows as ``<build dir>`` (jobs/redaction.py), here
    taken to be ``build_dir``."""
    for message in messages:
        found = re.search(r"Cloning into '([^']+)'", message)
        if found:
            logged = found.group(1)
            assert logged.startswith(f"{BUILD_DIR}/"), logged
            return build_dir / logged.removeprefix(f"{BUILD_DIR}/")
    raise AssertionError("the log names no clone:\n" + "\n".join(messages))


def messages(store: Store, build_id: str) -> list[str]:
    return [message for _, message in store.logs(build_id)]


async def wait_for_line(service: BuildService, build_id: str, text: str) -> None:
    async with asyncio.timeout(120):
        async for event in service.watch(build_id):
            if event.kind == "log" and text in event.message:
                return
            if event.kind == "state" and event.state and BuildState(event.state).finished:
                raise AssertionError(f"the build ended before {text!r}: {event.message}")


ENDINGS = {
    "success": ("RUN true", BuildState.BUILT, ""),
    "failure": ("RUN exit 3", BuildState.FAILED, "returned a non-zero code: 3"),
    "cancel": (SLOW_STEP, BuildState.CANCELLED, "cancelled"),
    "timeout": (SLOW_STEP, BuildState.FAILED, "timed out"),
    "kill": (SLOW_STEP, BuildState.FAILED, "stopped by signal 9"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_every_ending_removes_the_checkout(
    ending: str,
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    step, state, error = ENDINGS[ending]
    repo = git_server.create_repo(
        f"end-{ending}-{unique}", {"Dockerfile": dockerfile(step), "big": BIG}
    )
    timeout = 8 if ending == "timeout" else 600
    service: BuildService = await start_service(make_settings(limits={"build_timeout": timeout}))
    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    build_id = outcome.build.id
    build_dir = tmp_path / "state" / "builds" / build_id

    if step == SLOW_STEP and ending != "timeout":
        await wait_for_line(service, build_id, SLOW_STEP)
        checkout = checkout_in(messages(service.store, build_id), build_dir)
        assert (checkout / "big").stat().st_size == len(BIG)
        if ending == "cancel":
            await service.cancel(build_id)
        else:
            pid = service.get(build_id).pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
    await wait_finished(service, build_id)

    build = service.get(build_id)
    assert build.state is state, build.error
    assert error in (build.error or "")
    checkout = checkout_in(messages(service.store, build_id), build_dir)
    assert not checkout.exists()
    assert not build_dir.exists()


def test_a_crash_leaves_nothing_after_the_restart(
    git_server: GitServer, start_server: StartServer, unique: str, tmp_path: Path
) -> None:
    """kill -9 of the service mid-build leaves the checkout; the next start removes it,
    and a graceful stop (Ctrl-C) removes the re-run's."""
    repo = git_server.create_repo(
        f"crash-dir-{unique}", {"Dockerfile": dockerfile(SLOW_STEP), "big": BIG}
    )
    tmpdir = tmp_path / "service-tmp"
    tmpdir.mkdir()
    server = start_server(env={"TMPDIR": str(tmpdir)})
    with server.client() as client:
        build_id = client.post("/api/v1/builds", json={"repo": repo.url}).json()["id"]

    store = Store(tmp_path / "state" / "builds.sqlite")
    try:
        wait_until(lambda: any(SLOW_STEP in m for m in messages(store, build_id)), timeout=120)
        builds = tmp_path / "state" / "builds"
        checkout = checkout_in(messages(store, build_id), builds / build_id)
        pid = store.get(build_id).pid  # type: ignore[union-attr]
    finally:
        store.close()
    assert (checkout / "big").exists()

    server.kill()
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10)
    assert (checkout / "big").exists()  # what a crash leaves

    server.start()  # answers once start-up (and its sweep) is done
    assert not checkout.exists()
    server.stop()  # SIGTERM while the build runs again
    assert list(builds.iterdir()) == []
    assert [path.name for path in tmpdir.iterdir() if path.name.startswith("repo2docker")] == []


def test_a_server_starting_leaves_a_running_cli_build_its_directory(
    git_server: GitServer,
    registry: Registry,
    start_server: StartServer,
    unique: str,
    tmp_path: Path,
) -> None:
    """The start-up sweep removes only what no live process holds: a build that
    ``binderhub-service build`` runs on the same state file keeps its checkout."""
    repo = git_server.create_repo(
        f"cli-dir-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 5"), "big": BIG}
    )
    state_path = tmp_path / "state" / "builds.sqlite"
    config = tmp_path / "cli.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "image_prefix": f"{registry.host}/t{unique}-",
                "state_path": str(state_path),
                "repo2docker": legacy_repo2docker(),
            }
        )
    )
    with (tmp_path / "cli.log").open("wb") as log:
        cli = subprocess.Popen(
            [CLI, "build", "--config", str(config), repo.url],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(state_path.exists, timeout=60)
        store = Store(state_path)
        try:
            wait_until(lambda: len(store.active()) == 1, timeout=60)
            build_id = store.active()[0].id
            wait_until(lambda: any("sleep 5" in m for m in messages(store, build_id)), timeout=120)
            checkout = checkout_in(
                messages(store, build_id), state_path.parent / "builds" / build_id
            )
        finally:
            store.close()

        start_server()  # its start-up sweeps the builds' directories

        assert (checkout / "big").exists()
        assert cli.wait(120) == 0, (tmp_path / "cli.log").read_text()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert not (tmp_path / "state" / "builds" / build_id).exists()
