"""Why a repo2docker run failed, and whether the failure is the commit's own.

A failure is remembered (the next request for the commit answers ``failed-before``
until it expires or is forced) only when it is positively recognised as the build of
the repository's own content failing: a Dockerfile step that failed, a Dockerfile
Docker refused, or an environment file repo2docker refused. Everything else is
temporary (issue #12): the registry or the push, the Docker daemon, repo2docker's
command line or configuration, signals, git, and whatever is not recognised.

The patterns match repo2docker 2024.7.0 with Docker's legacy builder, and 2026.4.0
with ``docker buildx`` (BuildKit): its failures end with buildx's ``ERROR: failed to
build: …`` line, after `` > <step>:`` lines naming the steps that failed, then
repo2docker's ``Command '['docker', 'buildx', …]' returned non-zero exit status``; the
``buildkit`` engine (builder/) names a BuildKit daemon it cannot reach, a refused TLS
certificate and a missing buildx itself. None of those is the commit's. Pure
functions; the golden tests hold lines captured from real runs.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .model import LogLine

TAIL_LINES = 200
"""How many of the last log lines an executor keeps for ``classify_failure``: enough
for repo2docker's last traceback, which ends every failure it reports."""

_ERROR_PREFIX = "Error during build: "

_STEP_FAILED = (
    re.compile(r"^The command .* returned a non-zero code: \d+"),  # legacy builder
    re.compile(r"process \".*\" did not complete successfully: exit code"),  # BuildKit
    re.compile(r"^(COPY|ADD) failed: "),
)
_DOCKERFILE_INVALID = (
    re.compile(r"(dockerfile parse error[^\"]*)", re.IGNORECASE),
    re.compile(r"(failed to solve: dockerfile parse error.*)", re.IGNORECASE),
    re.compile(r"(Dockerfile parse error.*)"),
)
_ENVIRONMENT_REFUSED = (
    # repo2docker/buildpacks raise these while reading the repository's files
    re.compile(r"Python version \S+ on \S+ is not supported"),
    re.compile(r"python_version must always be specified as 'x\.y'"),
    re.compile(r"environment\.yml should contain a dictionary"),
    re.compile(r"in \"environment\.yml\", line \d+"),  # ruamel's YAML syntax errors
    re.compile(r"Found invalid package name .* in apt\.txt"),
    re.compile(r"contains both a 'binder' and a '\.binder' directory"),
    re.compile(r"specified in runtime\.txt\. Please use a newer snapshot date"),
    re.compile(r"Failed to find a matching Julia version"),
    re.compile(r"The legacy buildpack has been removed"),
)
_BUILDX_COMMAND = re.compile(r"^Command '\['docker', 'buildx', 'build'")
_BUILDX_ERROR = re.compile(r"^ERROR: (?:failed to build: )?(.*)")
_FAILED_STEP = re.compile(r"^ > (.+):$")
_BUILDER = (
    # messages of builder/'s engine (binderhub_service_builder), as they are
    re.compile(r"^the BuildKit daemon at \S+ is unreachable: "),
    re.compile(r"^TLS certificate refused talking to the BuildKit daemon "),
    re.compile(r"^docker buildx is missing: "),
    re.compile(r"^(BUILDKIT_HOST|BUILDKIT_TLS_DIR|DOCKER_CONFIG)=.* (is not|lacks) "),
    re.compile(r"^docker buildx create failed "),
)
_FETCH = re.compile(r"^Failed to (clone repository|check out ref)")
_DAEMON = re.compile(r"Container engine initialization error|Check if docker is running")
_CONFIG = re.compile(r"^(traitlets\.traitlets\.)?TraitError: (.*)")
_USAGE = re.compile(r"^\S+: error: (.*)")


@dataclass(frozen=True)
class Failure:
    """A failed run: the build record's message, and whether the commit caused it."""

    message: str
    remember: bool = False


def classify_failure(returncode: int, lines: Sequence[LogLine], image: str) -> Failure:
    """Classify a repo2docker run that exited with ``returncode`` (non-zero; negative
    for a signal, as ``subprocess`` reports it) after writing ``lines`` (the last ones
    at least, as ``parse_log_line`` made them). ``image`` names the pushed image.

    ``remember`` is True only for the commit's own failures (see the module
    docstring); the message always names the cause repo2docker reported.
    """
    if returncode < 0:
        return Failure(f"repo2docker was stopped by signal {_signal_name(-returncode)}")
    error = _last_error(lines)
    own = _own_failure(error) if error else None
    if own is not None:
        return Failure(own, remember=True)
    buildkit = _buildkit_failure(error, lines, image)
    if buildkit is not None:
        return Failure(buildkit)
    for line in reversed(lines):
        text = line.message.strip()
        if _DAEMON.search(text):
            return Failure(f"the Docker daemon is unreachable: {text}")
        config = _CONFIG.match(text)
        if config:
            return Failure(f"repo2docker refused its configuration: {config.group(2)}")
        usage = _USAGE.match(text)
        if usage and returncode == 2:
            return Failure(f"repo2docker refused its command line: {usage.group(1)}")
    if error and _built(lines):
        return Failure(f"pushing {image} failed: {error}")
    if _FETCH.match(error):
        fatal = _git_fatal(lines)
        return Failure(
            f"fetching the repository failed: {error}" + (f" ({fatal})" if fatal else "")
        )
    reason = f"repo2docker exited with code {returncode}"
    return Failure(f"{reason}: {error}" if error else reason)


def _own_failure(error: str) -> str | None:
    for pattern in _STEP_FAILED:
        if pattern.search(error):
            return f"a Dockerfile step failed: {error}"
    for pattern in _DOCKERFILE_INVALID:
        found = pattern.search(error)
        if found:
            return f"the Dockerfile is invalid: {found.group(1)}"
    for pattern in _ENVIRONMENT_REFUSED:
        if pattern.search(error):
            return f"repo2docker refused the repository's environment: {error}"
    return None


def _buildkit_failure(error: str, lines: Sequence[LogLine], image: str) -> str | None:
    """The message for a failure of the BuildKit side (never the commit's), or None."""
    if any(pattern.match(error) for pattern in _BUILDER):
        return error
    failed_steps = {
        found.group(1) for line in lines if (found := _FAILED_STEP.match(line.message.rstrip()))
    }
    if "[internal] waiting for connection" in failed_steps:
        return f"the BuildKit daemon did not answer: {error}"
    if "exporting to image" in failed_steps:
        return f"pushing {image} failed: {error}"
    if "exporting cache to registry" in failed_steps:
        return f"exporting the build cache failed: {error}"
    return None


def _last_error(lines: Sequence[LogLine]) -> str:
    """The last line repo2docker marked as its failure, without its prefix; when that
    only says that ``docker buildx build`` failed, buildx's own last ``ERROR:`` line."""
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line.phase in ("failed", "failure") or line.message.startswith("Error"):
            error = line.message.strip().removeprefix(_ERROR_PREFIX)
            if _BUILDX_COMMAND.match(error):
                return _buildx_error(list(lines)[:index]) or error
            return error
    return ""


def _buildx_error(lines: Sequence[LogLine]) -> str:
    for line in reversed(lines):
        found = _BUILDX_ERROR.match(line.message.strip())
        if found:
            return found.group(1)
    return ""


def _built(lines: Iterable[LogLine]) -> bool:
    """Whether the image was built (so a failure after it is the push's)."""
    return any(
        line.phase == "building" and line.message.startswith(("Successfully tagged", "naming to"))
        for line in lines
    )


def _git_fatal(lines: Sequence[LogLine]) -> str:
    """git's own reason ("fatal: …") for a failed clone or checkout, if it gave one."""
    for line in reversed(lines):
        if line.phase == "fetching" and line.message.startswith("fatal:"):
            return line.message.strip()
    return ""


def _signal_name(number: int) -> str:
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)


def retry_time(until: float) -> str:
    """``until`` (epoch seconds) as people read it: ``2026-11-30 08:42 UTC``."""
    return datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")
