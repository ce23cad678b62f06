from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.repo2docker.command import (
    CONTENT_PROVIDER_CONFIG,
    buildkit_environment,
    buildx_args,
    cache_ref,
    repo2docker_args,
    repo2docker_config,
)
from jobs.repo2docker.log_lines import parse_log_line
from jobs.settings import BuildKitSettings, Repo2DockerSettings

GOLDEN = Path(__file__).parent / "golden"

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_arguments_put_the_repo_last() -> None:
    settings = Repo2DockerSettings(
        extra_args=["--appendix", "RUN true"], target_repo_dir="/srv/repo", user_id=1001
    )
    args = repo2docker_args(
        settings,
        image="r.example/x:" + SHA,
        repo="https://github.com/a/b",
        sha=SHA,
        config_file="/etc/r2d.py",
    )
    assert args == [
        "--config",
        "/etc/r2d.py",
        "--engine",
        "buildkit",
        "--no-run",
        "--push",
        "--json-logs",
        "--user-id",
        "1001",
        "--user-name",
        "jovyan",
        "--image-name",
        "r.example/x:" + SHA,
        "--ref",
        SHA,
        "--target-repo-dir",
        "/srv/repo",
        "--appendix",
        "RUN true",
        "https://github.com/a/b",
    ]


def test_log_lines() -> None:
    line = parse_log_line('{"message": "Step 1/9 : FROM x\\n", "phase": "building"}\n')
    assert line is not None
    assert (line.phase, line.message) == ("building", "Step 1/9 : FROM x")
    assert (
        parse_log_line('{"message": "Pushing image\\n", "progress": {}, "phase": "pushing"}')
        is None
    )
    assert parse_log_line("\n") is None
    raw = parse_log_line("Traceback (most recent call last):\n")
    assert raw is not None
    assert (raw.phase, raw.message) == (
        "",
        "Traceback (most recent call last):",
    )
    assert parse_log_line("[1, 2]") is not None


def test_blank_build_stream_lines_are_dropped() -> None:
    assert parse_log_line('{"message": "\\n", "phase": "building"}') is None


def test_repo2docker_2024_gets_no_engine_argument() -> None:
    args = repo2docker_args(
        Repo2DockerSettings(version="2024.7.0"),
        image="r.example/x:" + SHA,
        repo="https://github.com/a/b",
        sha=SHA,
        config_file=None,
    )
    assert "--engine" not in args
    assert args[0] == "--no-run"


@pytest.mark.parametrize(
    ("version", "buildx"),
    [
        ("2024.7.0", False),
        ("2024.07.0", False),
        ("2025.6.0", False),
        ("2025.8.0", True),
        ("2025.08.1", True),
        ("2026.4.0", True),
        ("2027.1", True),
    ],
)
def test_versions_from_2025_8_build_with_buildx(version: str, buildx: bool) -> None:
    assert Repo2DockerSettings(version=version).uses_buildx is buildx


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        (
            "127.0.0.1:5000/binder-gh-a-b-1a2b3c:" + SHA,
            "127.0.0.1:5000/binder-gh-a-b-1a2b3c:buildcache",
        ),
        ("registry.example/org/binder-x:" + SHA, "registry.example/org/binder-x:buildcache"),
        ("registry.example:5000/binder-x", "registry.example:5000/binder-x:buildcache"),
    ],
)
def test_the_cache_lives_next_to_the_images_of_the_repository(image: str, ref: str) -> None:
    assert cache_ref(image) == ref


def test_buildx_arguments_import_and_export_the_registry_cache() -> None:
    image = "127.0.0.1:5000/binder-x:" + SHA
    on = BuildKitSettings(host="unix:///run/buildkit/buildkitd.sock")
    assert buildx_args(on, image) == [
        "--cache-from",
        "type=registry,ref=127.0.0.1:5000/binder-x:buildcache",
        "--cache-to",
        "type=registry,ref=127.0.0.1:5000/binder-x:buildcache,mode=max,ignore-error=true",
    ]
    # the docker driver (no daemon of our own) cannot export a cache; cache off: none
    assert buildx_args(BuildKitSettings(), image) == []
    assert buildx_args(BuildKitSettings(host="tcp://b:1234", cache=False), image) == []


def test_configuration_file_golden() -> None:
    text = repo2docker_config(buildx_args(BuildKitSettings(host="tcp://b:1234"), "r/x:1"))
    # the content provider (tests/unit/test_checkout_links.py), then the build's cache
    assert text.startswith(CONTENT_PROVIDER_CONFIG)
    golden = (GOLDEN / "repo2docker_config_buildkit.txt").read_text()
    assert text.removeprefix(CONTENT_PROVIDER_CONFIG) == golden
    assert "extra_buildx_build_args" not in repo2docker_config([])


def test_the_engine_environment() -> None:
    settings = BuildKitSettings(
        host="tcp://buildkitd:1234", tls_dir=Path("/etc/bk"), tls_servername="buildkitd"
    )
    assert buildkit_environment(settings) == {
        "BUILDKIT_HOST": "tcp://buildkitd:1234",
        "BUILDKIT_TLS_DIR": "/etc/bk",
        "BUILDKIT_TLS_SERVERNAME": "buildkitd",
    }
    assert buildkit_environment(BuildKitSettings()) == {}


@pytest.mark.parametrize("host", ["buildkitd:1234", "http://x:1", "tcp://", "unix://relative"])
def test_a_buildkit_host_that_is_no_address_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="must be unix:///path or tcp://host:port"):
        BuildKitSettings(host=host)


def test_buildkit_transfer_progress_is_dropped_and_its_end_kept() -> None:
    def line(message: str) -> str:
        return json.dumps({"message": message + "\n", "phase": "building"})

    layer = "#7 sha256:85c1cfc449407589a5463618c8091870175f339abe6da56f10cf1a6a5d07a162"
    assert parse_log_line(line(f"{layer} 49.28MB / 93.29MB 0.2s")) is None
    assert parse_log_line(line(f"{layer} 1.05kB / 1.05kB 0.0s")) is None
    for kept in (
        f"{layer} 93.29MB / 93.29MB 0.4s done",
        f"#7 extracting {layer[3:]} 3.4s done",
        "#8 0.148 computing",
        "#8 CACHED",
    ):
        parsed = parse_log_line(line(kept))
        assert parsed is not None
        assert parsed.message == kept
