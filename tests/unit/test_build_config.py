"""The docker configuration directory of a BuildKit build (jobs/executors/build_config.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from jobs.executors.build_config import write_docker_config
from jobs.settings import load_settings

PREFIX = "registry.example:5000/binder-"


def test_username_and_password_become_a_basic_auth_entry(tmp_path: Path) -> None:
    settings = load_settings(
        None, image_prefix=PREFIX, registry={"username": "builder", "password": "s3cret"}
    )
    directory = write_docker_config(tmp_path / "docker", settings)
    config = directory / "config.json"
    assert json.loads(config.read_text()) == {
        "auths": {"registry.example:5000": {"auth": "YnVpbGRlcjpzM2NyZXQ="}}
    }
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_a_configured_docker_config_is_copied_not_linked(tmp_path: Path) -> None:
    source = tmp_path / "config.json"
    source.write_text('{"auths": {"registry.example:5000": {"auth": "eDp5"}}}')
    settings = load_settings(None, image_prefix=PREFIX, registry={"docker_config": source})
    config = write_docker_config(tmp_path / "docker", settings) / "config.json"
    assert not config.is_symlink()
    assert json.loads(config.read_text()) == json.loads(source.read_text())


def test_a_docker_config_that_is_not_json_is_named(tmp_path: Path) -> None:
    source = tmp_path / "config.json"
    source.write_text("auths: nope")
    settings = load_settings(None, image_prefix=PREFIX, registry={"docker_config": source})
    with pytest.raises(ValueError, match=rf"registry.docker_config {source}: "):
        write_docker_config(tmp_path / "docker", settings)


def test_without_credentials_there_is_no_config_json(tmp_path: Path) -> None:
    directory = write_docker_config(tmp_path / "docker", load_settings(None, image_prefix=PREFIX))
    assert directory.is_dir()
    assert not (directory / "config.json").exists()
