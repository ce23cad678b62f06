"""Registry credentials from one setting (pure parts and the file reader)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from jobs.errors import RegistryAuthError
from jobs.registry.auth import (
    DockerConfigCredentials,
    auth_from_docker_config,
    build_docker_config,
    credentials_from_docker_config,
    docker_auth_key,
    make_docker_config,
    write_docker_config,
)
from jobs.settings import Settings


def settings_of(**values: Any) -> Settings:
    """Settings from plain values, as a configuration file gives them."""
    return Settings.model_validate(values)


def test_docker_config_golden() -> None:
    # the form `docker login` writes without a credential store; "builder:s3cret:x"
    assert make_docker_config("registry.example.org", "builder", "s3cret:x") == {
        "auths": {"registry.example.org": {"auth": "YnVpbGRlcjpzM2NyZXQ6eA=="}}
    }
    assert make_docker_config("127.0.0.1:5000", "u", "p") == {
        "auths": {"127.0.0.1:5000": {"auth": "dTpw"}}
    }


def test_docker_hub_uses_the_index_key() -> None:
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert docker_auth_key(host) == "https://index.docker.io/v1/"
        config = make_docker_config(host, "u", "p")
        assert auth_from_docker_config(config, host) == ("u", "p")
    assert docker_auth_key("ghcr.io") == "ghcr.io"


def test_lookup_by_the_keys_docker_writes() -> None:
    auth = base64.b64encode(b"user:pa:ss").decode()
    for key in ("r.example", "https://r.example", "http://r.example", "https://r.example/v1/"):
        config = {"auths": {key: {"auth": auth}}}
        assert auth_from_docker_config(config, "r.example") == ("user", "pa:ss")
        assert auth_from_docker_config(config, "other.example") is None
    # a credential helper's entry holds no auth: nothing this service can use
    assert auth_from_docker_config({"credHelpers": {"r.example": "ecr-login"}}, "r.example") is None
    assert auth_from_docker_config({"auths": []}, "r.example") is None
    assert auth_from_docker_config([], "r.example") is None


@pytest.mark.parametrize("auth", ["not base64!", base64.b64encode(b"no-colon").decode()])
def test_a_malformed_auth_is_a_clear_error(auth: str) -> None:
    with pytest.raises(RegistryAuthError, match=r"r\.example"):
        auth_from_docker_config({"auths": {"r.example": {"auth": auth}}}, "r.example")


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(RegistryAuthError, match=r"missing\.json"):
        credentials_from_docker_config(tmp_path / "missing.json", "r.example")
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(RegistryAuthError, match="not a JSON object"):
        credentials_from_docker_config(bad, "r.example")


def swap_in(directory: Path, config: dict[str, object], name: str) -> None:
    """Replace ``directory/config.json`` as a Kubernetes Secret volume does: the new
    content in a new file, then an atomic rename of a symlink onto the old name."""
    target = directory / name
    target.write_text(json.dumps(config))
    link = directory / "tmp-link"
    link.symlink_to(target)
    os.replace(link, directory / "config.json")


def test_rotated_credentials_are_read_again(tmp_path: Path) -> None:
    swap_in(tmp_path, make_docker_config("r.example", "u", "first"), "a")
    credentials = DockerConfigCredentials(tmp_path / "config.json", "r.example")
    assert credentials() == ("u", "first")
    assert credentials() == ("u", "first")
    swap_in(tmp_path, make_docker_config("r.example", "u", "second"), "b")
    assert credentials() == ("u", "second")
    (tmp_path / "config.json").unlink()
    with pytest.raises(RegistryAuthError, match=r"config\.json"):
        credentials()


def test_a_build_gets_the_one_setting_as_a_config_json(tmp_path: Path) -> None:
    prefix = "registry.example.org/binder-"
    settings = settings_of(image_prefix=prefix, registry={"username": "b", "password": "pw"})
    content = build_docker_config(settings)
    assert content is not None
    assert json.loads(content) == make_docker_config("registry.example.org", "b", "pw")
    assert build_docker_config(Settings(image_prefix=prefix)) is None
    file = tmp_path / "given.json"
    file.write_text('{"auths": {}}')
    from_file = settings_of(image_prefix=prefix, registry={"docker_config": str(file)})
    assert build_docker_config(from_file) == b'{"auths": {}}'
    file.write_text('{"auths": {"x": {}}}')  # as it is when the build starts
    assert build_docker_config(from_file) == b'{"auths": {"x": {}}}'


def test_the_written_config_is_private(tmp_path: Path) -> None:
    directory = write_docker_config(tmp_path / "build" / "docker", b"{}")
    assert (directory / "config.json").read_bytes() == b"{}"
    assert stat.S_IMODE((directory / "config.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_password_needs_a_user() -> None:
    with pytest.raises(ValueError, match=r"registry\.username"):
        settings_of(registry={"password": "pw"})


def test_kubernetes_builds_need_a_secret_for_the_credentials() -> None:
    with pytest.raises(ValueError, match=r"kubernetes\.docker_config_secret"):
        settings_of(executor="kubernetes", registry={"username": "b", "password": "pw"})
    settings_of(
        executor="kubernetes",
        registry={"username": "b", "password": "pw"},
        kubernetes={"docker_config_secret": {"name": "push", "key": "config.json"}},
    )
