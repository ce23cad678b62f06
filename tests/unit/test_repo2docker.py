from __future__ import annotations

from jobs.repo2docker import parse_log_line, repo2docker_args
from jobs.settings import Repo2DockerSettings

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
