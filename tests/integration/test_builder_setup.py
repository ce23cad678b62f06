"""builder/'s buildx builder, made with the real docker CLI and buildx plugin (issue 24): a
build pod's ``$DOCKER_CONFIG`` is new, so its builder is made with one CLI call; a config
that has it already is asked, not changed. The CLI is the host's, behind a shim that records
each call's arguments (the shim runs the real one)."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest
from binderhub_service_builder.builders import ensure_builder, remote_builder

# the docker CLI and its buildx plugin are installed by the fixture's scripts, as for
# every integration test: a missing one fails the test rather than skipping it
pytestmark = pytest.mark.usefixtures("docker_ready")


def recording_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``docker`` appends its arguments to a file, then runs the host's."""
    docker = shutil.which("docker")
    assert docker is not None, "scripts/ensure-docker.sh installs the docker CLI"
    shim_dir, calls = tmp_path / "bin", tmp_path / "calls"
    shim_dir.mkdir()
    shim = shim_dir / "docker"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {docker} "$@"\n')
    shim.chmod(0o755)
    env = {
        "PATH": f"{shim_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "BUILDKIT_HOST": "unix:///run/buildkit/buildkitd.sock",
    }
    return env, calls


def test_a_new_docker_config_gets_its_builder_with_one_call(tmp_path: Path) -> None:
    env, calls = recording_env(tmp_path)
    builder = remote_builder(env)
    assert builder is not None
    selected = ensure_builder(builder, env)
    assert selected["BUILDX_BUILDER"] == builder.name
    made = calls.read_text().splitlines()
    assert len(made) == 1
    assert made[0].startswith(f"buildx create --name {builder.name} ")
    # the second time the builder is there: asked for, not made again
    assert ensure_builder(builder, env) == selected
    assert calls.read_text().splitlines()[1:] == [f"buildx inspect {builder.name}"]


def test_the_engine_sets_up_its_builder_with_that_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """repo2docker asks the engine for the image first (``inspect_image``): the builder is
    made then, and its ``docker buildx create`` stands for ``docker buildx version`` too."""
    env, calls = recording_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with warnings.catch_warnings():  # repo2docker imports python-json-logger's old name
        warnings.simplefilter("ignore", DeprecationWarning)
        from binderhub_service_builder.engine import BuildKitEngine
    engine = BuildKitEngine(parent=None)
    assert engine.inspect_image("registry.example/image:tag") is None
    assert engine.container_cli == "docker"
    made = calls.read_text().splitlines()
    assert len(made) == 1
    assert made[0].startswith("buildx create --name bhs-")
