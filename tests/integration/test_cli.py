"""``binderhub-service build`` in the foreground, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from testkit.components import GitServer, Registry, dockerfile, legacy_repo2docker

CLI = str(Path(sys.executable).parent / "binderhub-service")


def run_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "build", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_build_command(
    git_server: GitServer, registry: Registry, unique: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "image_prefix": f"{registry.host}/t{unique}-",
                "state_path": str(tmp_path / "state.sqlite"),
                "repo2docker": legacy_repo2docker(),
            }
        )
    )
    repo = git_server.create_repo(f"cli-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})

    built = run_cli(repo.url, "--ref", "main", config=config)
    assert built.returncode == 0, built.stderr
    image = built.stdout.strip()
    assert image.startswith(f"{registry.host}/t{unique}-127-0-0-1-cli-{unique}-")
    # the progress display (not a terminal here: one line per log line) shows phases
    assert "building: " in built.stderr
    assert "Successfully pushed" in built.stderr

    cached = run_cli(repo.url, "--ref", "main", config=config)
    assert cached.returncode == 0
    assert cached.stdout.strip() == image
    assert "exists already" in cached.stderr

    unknown = run_cli(repo.url, "--ref", "nope", config=config)
    assert unknown.returncode == 2
    assert "has no branch or tag named 'nope'" in unknown.stderr
    assert unknown.stdout == ""

    broken = git_server.create_repo(f"clibad-{unique}", {"Dockerfile": dockerfile("RUN false")})
    failed = run_cli(broken.url, config=config)
    assert failed.returncode == 1
    assert "build failed: a Dockerfile step failed: The command '/bin/sh -c false'" in failed.stderr
    again = run_cli(broken.url, config=config)
    assert again.returncode == 1
    assert "it is tried again after " in again.stderr
    assert "or now with --force" in again.stderr


def test_help_and_configuration_errors(tmp_path: Path) -> None:
    for command in ("serve", "build"):
        shown = subprocess.run([CLI, command, "--help"], capture_output=True, text=True)
        assert shown.returncode == 0
        assert "--config FILE" in shown.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("registry:\n  pasword: x\n")
    refused = subprocess.run(
        [CLI, "serve", "--config", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2
    assert "registry.pasword: unknown setting" in refused.stderr


def test_a_builder_version_we_do_not_have_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("repo2docker:\n  version: 2099.1.0\n")
    refused = subprocess.run(
        [CLI, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2
    assert "repo2docker.version is 2099.1.0 but the installed repo2docker is 2026.4.0" in (
        refused.stderr
    )
