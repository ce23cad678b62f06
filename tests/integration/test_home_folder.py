"""The home-folder problem (issue 7), with real containers of images this service built.

repo2docker puts the repository in the user's home by default, and a hub mounts the
user's persistent volume over that home: the content is hidden. Both remedies in
docs/home-folder.md are run here with a volume (a host folder owned by the image's user)
mounted over ``/home/jovyan``:

- ``repo2docker.target_repo_dir``: the content lives outside the home;
- ``webhook.profiles.home_copy_command``: copied into the home, never overwriting.

Offline only Dockerfile repositories build; repo2docker hands ``--target-repo-dir`` to a
Dockerfile as the ``REPO_DIR`` build argument, and this Dockerfile places the content
there as repo2docker's own buildpacks do (``COPY`` into ``${REPO_DIR}``, default home).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import Settings
from testkit.components import DOCKER, GitServer, dockerfile
from webhook.profiles import home_copy_command

pytestmark = pytest.mark.anyio

StartService = Callable[[Settings], Any]
UID = 1000
HOME = "/home/jovyan"
REPO_FILES = {
    "analysis.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n',
    "README.md": "# the repository's readme\n",
    "data/table.csv": "a,b\n1,2\n",
    "Dockerfile": dockerfile(
        'ARG REPO_DIR="/home/${NB_USER}"',
        'ENV REPO_DIR="${REPO_DIR}" HOME="/home/${NB_USER}"',
        'RUN useradd --create-home --uid "${NB_UID}" "${NB_USER}" '
        '&& mkdir -p "${REPO_DIR}" && chown "${NB_UID}:${NB_UID}" "${REPO_DIR}"',
        'COPY --chown="${NB_UID}:${NB_UID}" . "${REPO_DIR}/"',
        'USER "${NB_USER}"',
        'WORKDIR "${REPO_DIR}"',
    ),
}


async def build_image(service: BuildService, url: str) -> str:
    outcome = await service.request(url, "main")
    assert outcome.build is not None, outcome
    build = service.get(outcome.build.id)
    async with service.events.subscribe(build.id) as events, asyncio.timeout(300):
        while not build.state.finished:
            await events.get()
    assert build.state is BuildState.BUILT, build.error
    return build.image


def user_volume(tmp_path: Path, files: dict[str, str]) -> Path:
    """A user's persistent home as a hub would mount it: owned by the image's user."""
    home = tmp_path / "home"
    for name, content in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(content)
    home.mkdir(exist_ok=True)
    for path in [home, *home.rglob("*")]:
        os.chown(path, UID, UID)
    return home


def run(image: str, volume: Path | None, *command: str, workdir: str | None = None) -> str:
    """``command`` in a container of ``image``, with ``volume`` mounted over the home."""
    args = [DOCKER, "run", "--rm", "--network=none"]
    if volume is not None:
        args += ["-v", f"{volume}:{HOME}"]
    if workdir:
        args += ["-w", workdir]
    result = subprocess.run(
        [*args, image, *command], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def listing(image: str, volume: Path, directory: str) -> set[str]:
    out = run(image, volume, "sh", "-c", f'cd "{directory}" && find . -type f ! -path "./.*"')
    return {line.removeprefix("./") for line in out.split()}


async def test_by_default_the_home_volume_hides_the_repository(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    """The problem itself, so that the remedies below are known to be needed."""
    repo = git_server.create_repo(f"home-default-{unique}", REPO_FILES)
    image = await build_image(await start_service(make_settings()), repo.url)
    without_volume = run(image, None, "ls", HOME).split()
    assert "analysis.ipynb" in without_volume
    assert listing(image, user_volume(tmp_path, {"notes.txt": "mine\n"}), HOME) == {"notes.txt"}


async def test_target_repo_dir_keeps_the_repository_beside_the_home(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    repo = git_server.create_repo(f"home-target-{unique}", REPO_FILES)
    settings = make_settings(repo2docker={"target_repo_dir": "/srv/repo"})
    image = await build_image(await start_service(settings), repo.url)
    volume = user_volume(tmp_path, {"notes.txt": "my own notes\n"})

    assert listing(image, volume, "/srv/repo") == set(REPO_FILES)
    assert listing(image, volume, HOME) == {"notes.txt"}
    assert run(image, volume, "printenv", "REPO_DIR").strip() == "/srv/repo"
    # the spawner starts users in the repository (KubeSpawner working_dir)
    assert run(image, volume, "pwd", workdir="/srv/repo").strip() == "/srv/repo"
    # and their home is still theirs to write
    run(image, volume, "sh", "-c", f"echo saved > {HOME}/work.txt")
    assert (volume / "work.txt").read_text() == "saved\n"
    assert (volume / "notes.txt").read_text() == "my own notes\n"


async def test_copying_into_the_home_never_overwrites_the_users_files(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    repo = git_server.create_repo(f"home-copy-{unique}", REPO_FILES)
    settings = make_settings(repo2docker={"target_repo_dir": "/srv/repo"})
    image = await build_image(await start_service(settings), repo.url)
    dest = f"{HOME}/{repo.path.name}"
    volume = user_volume(
        tmp_path,
        {
            "notes.txt": "my own notes\n",
            # the user edited the readme of an earlier copy
            f"{repo.path.name}/README.md": "# my edited readme\n",
        },
    )

    run(image, volume, *home_copy_command("/srv/repo", dest))
    copied = volume / repo.path.name
    assert (copied / "README.md").read_text() == "# my edited readme\n"
    assert (copied / "analysis.ipynb").read_text() == REPO_FILES["analysis.ipynb"]
    assert (copied / "data" / "table.csv").read_text() == REPO_FILES["data/table.csv"]
    assert (volume / "notes.txt").read_text() == "my own notes\n"
    assert {(p.stat().st_uid, p.stat().st_gid) for p in copied.rglob("*")} == {(UID, UID)}

    # the next start copies what is missing and leaves the user's changes alone
    (copied / "analysis.ipynb").write_text("my work\n")
    (copied / "data" / "table.csv").unlink()
    run(image, volume, *home_copy_command("/srv/repo", dest))
    assert (copied / "analysis.ipynb").read_text() == "my work\n"
    assert (copied / "data" / "table.csv").read_text() == REPO_FILES["data/table.csv"]
    assert (copied / "README.md").read_text() == "# my edited readme\n"


async def test_the_copy_hook_exits_0_when_there_is_nothing_to_copy(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    """A failing postStart hook would kill the user's server: the copy never fails it."""
    repo = git_server.create_repo(f"home-nocopy-{unique}", REPO_FILES)
    image = await build_image(await start_service(make_settings()), repo.url)
    volume = user_volume(tmp_path, {"notes.txt": "mine\n"})
    run(image, volume, *home_copy_command("/srv/repo", f"{HOME}/repo"))
    assert sorted(p.name for p in volume.iterdir()) == ["notes.txt"]
