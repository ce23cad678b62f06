"""What one local build gets (jobs/executors/local/build_config.py): its docker configuration
directory, its git credential file, an allow-listed environment."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from jobs.errors import RegistryAuthError
from jobs.executors.local.build_config import (
    allowed_environment,
    write_build_files,
    write_docker_config,
    write_hg_config,
)
from jobs.forges.credentials import credential_set
from jobs.settings import load_settings
from jobs.sources.git_policy import git_policy
from jobs.sources.urls import ALLOWED_SCHEMES

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
    with pytest.raises(RegistryAuthError, match=rf"cannot read docker config {source}: "):
        write_docker_config(tmp_path / "docker", settings)


def test_without_credentials_there_is_no_config_json(tmp_path: Path) -> None:
    directory = write_docker_config(tmp_path / "docker", load_settings(None, image_prefix=PREFIX))
    assert directory.is_dir()
    assert not (directory / "config.json").exists()


SERVICE_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/var/lib/binderhub-service",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "https_proxy": "http://proxy:3128",
    "NO_PROXY": "localhost",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "DOCKER_HOST": "unix:///run/docker.sock",
    "BINDERHUB_SERVICE_REGISTRY__PASSWORD": "pw",
    "BINDERHUB_SERVICE_WEBHOOKS__GITHUB_SECRET": "secret",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "http.https://github.com.extraHeader",
    "GIT_CONFIG_VALUE_0": "Authorization: Basic eDp5",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "AWS_SECRET_ACCESS_KEY": "aws",
    "PYTHONPATH": "/src",
    "TMPDIR": "/tmp",
}


def test_a_build_sees_only_the_allow_listed_part_of_the_services_environment() -> None:
    assert allowed_environment(SERVICE_ENV) == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "https_proxy": "http://proxy:3128",
        "NO_PROXY": "localhost",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "DOCKER_HOST": "unix:///run/docker.sock",
    }


def test_a_tls_docker_client_keeps_finding_its_certificates() -> None:
    env = allowed_environment({"DOCKER_HOST": "tcp://d:2376", "DOCKER_TLS_VERIFY": "1"})
    assert env["DOCKER_CERT_PATH"] == str(Path.home() / ".docker")


def test_git_policy_is_no_prompts_allowed_transports_and_no_system_config() -> None:
    assert git_policy(allow_file=False) == {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "GIT_ALLOW_PROTOCOL": "http:https:git:ssh",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    assert git_policy(allow_file=True)["GIT_ALLOW_PROTOCOL"] == "http:https:git:ssh:file"
    # the transports git may use are the schemes a repository URL may have
    assert set(git_policy(allow_file=False)["GIT_ALLOW_PROTOCOL"].split(":")) == set(
        ALLOWED_SCHEMES
    )


def test_a_build_gets_its_repositorys_credential_only_in_files_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        image_prefix=PREFIX,
        registry={"username": "builder", "password": "s3cret"},
        forges={
            "hosts": [{"kind": "github", "url": "https://github.com", "token": "host-token"}],
            "credentials": [
                {"url": "https://github.com/org", "username": "bot", "password": "org-token"},
                {"url": "https://gitlab.example.org", "password": "other-token"},
            ],
        },
    )
    workdir = tmp_path / "build"
    workdir.mkdir()
    env = write_build_files(workdir, settings, "https://github.com/org/repo")
    assert env == {
        "DOCKER_CONFIG": str(workdir / "docker"),
        "GIT_CONFIG_GLOBAL": str(workdir / "git" / "config"),
        "HOME": str(workdir / "home"),
    }
    config = workdir / "git" / "config"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    for directory in ("docker", "git", "home"):
        assert stat.S_IMODE((workdir / directory).stat().st_mode) == 0o700
    text = config.read_text()
    best = credential_set(settings.forges).best("https://github.com/org/x")
    assert best is not None
    assert text == best.git_config()
    assert "https://github.com/org" in text
    for other in ("host-token", "other-token", "gitlab"):
        assert other not in text
    # a repository no credential covers gets an empty file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_build_files(elsewhere, settings, "https://example.org/repo")
    assert (elsewhere / "git" / "config").read_text() == ""
    # a record's build (no git repository) gets none, whatever its page's host
    record = tmp_path / "record"
    record.mkdir()
    write_build_files(record, settings, None)
    assert (record / "git" / "config").read_text() == ""


def test_a_mercurial_build_trusts_the_ca_bundle_through_its_hgrc(tmp_path: Path) -> None:
    """hg reads certifi's authorities, not ``SSL_CERT_FILE``: ``web.cacerts`` in the
    build's own ``HOME/.hgrc`` names the bundle; nothing is written without one."""
    bundle = tmp_path / "ca.crt"
    write_hg_config(tmp_path, None)
    assert not (tmp_path / ".hgrc").exists()
    write_hg_config(tmp_path, bundle)
    assert (tmp_path / ".hgrc").read_text() == f"[web]\ncacerts = {bundle}\n"
    assert (tmp_path / ".hgrc").stat().st_mode & 0o777 == 0o600
