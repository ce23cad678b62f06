"""Golden tests of ``classify_failure`` on output of real repo2docker 2024.7.0 runs.

Each ``golden/repo2docker_failures/<case>.log`` holds the last lines (push progress
lines left out, the venv's path shortened to /venv) that repo2docker wrote in a real
run against this machine's Docker daemon, registry and git daemon:

- step_failed: ``RUN echo about to fail && false``
- dockerfile_parse_error: ``FROOM nothing``; copy_missing_file: ``COPY nothere.txt /tmp/``
- environment_yml_not_a_dict / environment_yml_syntax_error, unsupported_python
  (``runtime.txt`` ``python-3.1``), bad_apt_txt (``!!!``), binder_and_dot_binder
- daemon_unreachable: ``DOCKER_HOST=unix:///tmp/fcap/no-such.sock``
- unknown_argument: ``--no-such-flag``; bad_configuration: ``--build-memory-limit lots``
- sigkill: the process group killed during a ``RUN sleep``
- push_registry_500: a proxy answering 500 to every blob upload
- push_registry_unreachable: image name on ``127.0.0.1:1``; clone_failed: a dead git URL
- out_of_memory: ``RUN head -c 300m /dev/zero | tail`` with ``--build-memory-limit 64M``
- commit_gone: ``--ref`` names a commit that a rewrite of the branch and ``git gc``
  removed from the repository on the git server
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.model import LogLine
from jobs.repo2docker.failures import Failure, classify_failure
from jobs.repo2docker.log_lines import parse_log_line

GOLDEN = Path(__file__).parent / "golden" / "repo2docker_failures"
IMAGE = "registry.example/binder-x:0123456789abcdef0123456789abcdef01234567"
ENV = "repo2docker refused the repository's environment: "

EXPECTED: dict[str, tuple[int, Failure]] = {
    "step_failed": (
        1,
        Failure(
            "a Dockerfile step failed: The command '/bin/sh -c echo about to fail && false'"
            " returned a non-zero code: 1",
            remember=True,
        ),
    ),
    "dockerfile_parse_error": (
        1,
        Failure(
            "the Dockerfile is invalid: dockerfile parse error line 4: unknown instruction: FROOM",
            remember=True,
        ),
    ),
    "copy_missing_file": (
        1,
        Failure(
            "a Dockerfile step failed: COPY failed: file not found in build context or excluded"
            " by .dockerignore: stat nothere.txt: file does not exist",
            remember=True,
        ),
    ),
    "environment_yml_not_a_dict": (
        1,
        Failure(
            ENV + "environment.yml should contain a dictionary."
            " Got <class 'ruamel.yaml.comments.CommentedSeq'>",
            remember=True,
        ),
    ),
    "environment_yml_syntax_error": (
        1,
        Failure(
            ENV + 'while parsing a flow sequence\n  in "environment.yml", line 2, column 15\n'
            "expected ',' or ']', but got '<stream end>'\n"
            '  in "environment.yml", line 3, column 1',
            remember=True,
        ),
    ),
    "unsupported_python": (
        1,
        Failure(ENV + "Python version 3.1 on linux-64 is not supported!", remember=True),
    ),
    "bad_apt_txt": (1, Failure(ENV + "Found invalid package name !!! in apt.txt", remember=True)),
    "binder_and_dot_binder": (
        1,
        Failure(
            ENV + "The repository contains both a 'binder' and a '.binder' directory."
            " However they are exclusive.",
            remember=True,
        ),
    ),
    "daemon_unreachable": (
        1,
        Failure(
            "the Docker daemon is unreachable: Container engine initialization error:"
            " ('Check if docker is running on the host.', DockerException(\"Error while"
            " fetching server API version: ('Connection aborted.', FileNotFoundError(2,"
            " 'No such file or directory'))\"))"
        ),
    ),
    "unknown_argument": (
        2,
        Failure("repo2docker refused its command line: unrecognized arguments: --no-such-flag"),
    ),
    "bad_configuration": (
        1,
        Failure(
            "repo2docker refused its configuration: lots is not a valid memory specification."
            " Must be an int or a string with suffix K, M, G, T"
        ),
    ),
    "sigkill": (-9, Failure("repo2docker was stopped by signal 9 (SIGKILL)")),
    "push_registry_500": (
        1,
        Failure(
            f"pushing {IMAGE} failed: received unexpected HTTP status: 500 Internal Server Error"
        ),
    ),
    "push_registry_unreachable": (
        1,
        Failure(
            f'pushing {IMAGE} failed: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1:'
            " connect: connection refused"
        ),
    ),
    "out_of_memory": (
        1,
        Failure(
            "the build was killed, most likely out of memory: The command '/bin/sh -c head"
            " -c 300m /dev/zero | tail' returned a non-zero code: 137"
        ),
    ),
    "commit_gone": (
        1,
        Failure(
            "commit d7074e575bffe7e20434ac289dba9deb0c1dbeb4 is no longer in the repository"
            " (fatal: Could not parse object 'd7074e575bffe7e20434ac289dba9deb0c1dbeb4'.)"
        ),
    ),
    "clone_failed": (
        1,
        Failure(
            "fetching the repository failed: Failed to clone repository from"
            " git://127.0.0.1:1/nothing (ref 0123456789012345678901234567890123456789)."
            " (fatal: unable to connect to 127.0.0.1:)"
        ),
    ),
}


def lines_of(case: str) -> list[LogLine]:
    raw = (GOLDEN / f"{case}.log").read_text().splitlines()
    return [line for line in map(parse_log_line, raw) if line is not None]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_real_repo2docker_failures(case: str) -> None:
    returncode, expected = EXPECTED[case]
    assert classify_failure(returncode, lines_of(case), IMAGE) == expected


def test_every_golden_log_has_an_expectation() -> None:
    assert {path.stem for path in GOLDEN.glob("*.log")} == set(EXPECTED)


def test_buildkit_wording_of_a_failed_step_is_the_commits() -> None:
    # BuildKit's wording (docker buildx; not installed here, so written by hand)
    error = (
        'ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully:'
        " exit code: 1"
    )
    lines = [LogLine("building", "#5 [2/2] RUN false"), LogLine("failed", error)]
    assert classify_failure(1, lines, IMAGE) == Failure(
        f"a Dockerfile step failed: {error}", remember=True
    )


def test_unrecognised_failures_are_not_remembered() -> None:
    lines = [LogLine("building", "Step 1/1 : FROM x"), LogLine("failed", "something new")]
    assert classify_failure(1, lines, IMAGE) == Failure(
        "repo2docker exited with code 1: something new"
    )
    assert classify_failure(3, [], IMAGE) == Failure("repo2docker exited with code 3")


def test_a_push_error_after_a_step_like_line_is_the_push() -> None:
    # a RUN step may print anything; only repo2docker's failure line decides
    lines = [
        LogLine("building", "The command 'x' returned a non-zero code: 1"),
        LogLine("building", f"Successfully tagged {IMAGE}"),
        LogLine("failed", "received unexpected HTTP status: 500 Internal Server Error"),
    ]
    assert not classify_failure(1, lines, IMAGE).remember
