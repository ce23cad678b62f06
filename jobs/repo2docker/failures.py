"""Why a repo2docker run failed, and whether the failure is the commit's own: one table.

``CAUSES`` is the rule, row by row (docs/overview.md, "Failure memory", is rendered
from it by ``jobs.repo2docker.failures_docs``). ``classify_failure`` walks it in order and the
first row with a pattern that matches names the cause. A failure is remembered (the
next request for the commit answers ``failed-before`` until it expires or is forced)
only when a row marked ``remembered`` matches: the build of the repository's own
content failed (a Dockerfile step, a Dockerfile Docker refused, an environment file
repo2docker refused). Everything else is temporary (issues 12 and 20): the host's disk
and memory wherever they ran out (a RUN step, a COPY, the export, the push, the clone;
those rows come first and so win over a step's failure), a commit force-pushed away, a
record modified while it was fetched or whose host had not prepared it in time,
the registry or the push, the Docker or BuildKit daemon, repo2docker's command line or
configuration, signals, git, and whatever no row recognises.

The patterns match repo2docker 2024.7.0 with Docker's legacy builder, and 2026.4.0
with ``docker buildx`` (BuildKit): its failures end with buildx's ``ERROR: failed to
build: …`` line, after `` > <step>:`` lines naming the steps that failed, then
repo2docker's ``Command '['docker', 'buildx', …]' returned non-zero exit status``.
Pure functions; the golden tests hold lines captured from real runs.
"""

from __future__ import annotations

import enum
import re
import signal
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..model import LogLine

TAIL_LINES = 200
"""How many of the last log lines an executor keeps for ``classify_failure``: enough
for repo2docker's last traceback, which ends every failure it reports."""


class Where(enum.Enum):
    """What of a failed run a pattern is matched against."""

    EXIT = "exit code"
    """repo2docker's exit code, as text (negative: the signal that stopped it)."""
    ERROR = "error"
    """repo2docker's last error line without ``Error during build:``; when that only
    says that ``docker buildx build`` failed, buildx's own last ``ERROR:`` line."""
    OUTPUT = "output"
    """Any of the last lines, newest first, without BuildKit's ``#N 0.123`` prefix."""
    GIT = "git"
    """git's own lines (repo2docker's ``fetching`` phase), newest first."""
    FAILED_STEP = "failed step"
    """The name of a step BuildKit lists as failed (`` > <name>:``)."""


class Needs(enum.Enum):
    """A condition a row holds besides its patterns."""

    NOTHING = ""
    EXIT_2 = "exit code 2"
    IMAGE_BUILT = "after the image was built"


@dataclass(frozen=True)
class Cause:
    """One row of the rule.

    ``message`` is a ``str.format`` template with the fields ``code``, ``signal``,
    ``image``, ``error`` (see ``Where.ERROR``), ``error_suffix`` (``: <error>`` or
    nothing), ``found`` (the text that matched), ``group`` (the pattern's first group, or
    ``found``) and ``fatal`` (`` (<git's fatal line>)`` or nothing).
    """

    name: str
    meaning: str
    remembered: bool
    patterns: tuple[tuple[Where, re.Pattern[str]], ...]
    message: str
    needs: Needs = Needs.NOTHING


def _p(where: Where, pattern: str, flags: int = 0) -> tuple[Where, re.Pattern[str]]:
    return where, re.compile(pattern, flags)


ERR, OUT, GIT, STEP, EXIT = Where.ERROR, Where.OUTPUT, Where.GIT, Where.FAILED_STEP, Where.EXIT

CAUSES: tuple[Cause, ...] = (
    Cause(
        "signal",
        "repo2docker itself was stopped by a signal (a cancel, a timeout, the host)",
        False,
        (_p(EXIT, r"^-\d+$"),),
        "repo2docker was stopped by signal {signal}",
    ),
    Cause(
        "disk full",
        "a disk is full (ENOSPC: the builder's, the registry's), whichever step hit it",
        False,
        (_p(OUT, r"no space left on device", re.IGNORECASE),),
        "a disk is full: {found}",
    ),
    Cause(
        "disk quota",
        "a disk quota is used up (EDQUOT), whichever step hit it",
        False,
        (_p(OUT, r"disk quota exceeded", re.IGNORECASE),),
        "a disk quota is used up: {found}",
    ),
    Cause(
        "out of memory",
        "a process of the build was killed (SIGKILL, exit code 137: the out-of-memory "
        "killer, mostly) or BuildKit saw the out-of-memory killer at work (cgroup v2)",
        False,
        (
            _p(ERR, r"did not complete successfully: exit code: 137$"),  # BuildKit
            _p(ERR, r"executor failed running \[.*\]: exit code: 137$"),  # Docker 20.10's
            _p(ERR, r"returned a non-zero code: 137$"),  # legacy builder
            # BuildKit's detectOOM (executor/runcexecutor, cgroup v2 only) turns the
            # exit into ENOMEM: "... did not complete successfully: cannot allocate memory"
            _p(ERR, r"did not complete successfully: cannot allocate memory$"),
            _p(OUT, r"^Killed$"),  # sh reporting its child's SIGKILL
        ),
        "the build was killed, most likely out of memory: {found}",
    ),
    Cause(
        "commit gone",
        "the commit is no longer in the repository (force-pushed away); it may come back",
        False,
        (_p(GIT, r"^fatal: Could not parse object '([0-9a-f]{40})'"),),
        "commit {group} is no longer in the repository ({found})",
    ),
    Cause(
        "record changed",
        "a record without versions (HydroShare, CKAN) was modified while it was fetched: "
        "its content is not the version the image is named after (builder/'s providers)",
        False,
        (_p(ERR, r" was modified (?:before|during) the download \(modified .+\): not building"),),
        "the record changed while it was fetched: {error}",
    ),
    Cause(
        "record not ready",
        "a record's host was still preparing its download when builder/'s provider stopped "
        "waiting for it (HydroShare prepares a resource's bag on demand)",
        False,
        (_p(ERR, r"^HydroShare has not prepared the bag of resource \S+ after "),),
        "the record was not ready to download: {error}",
    ),
    Cause(
        "step failed",
        "a Dockerfile step failed, or `COPY`/`ADD` found no such file (legacy builder)",
        True,
        (
            _p(ERR, r"^The command .* returned a non-zero code: \d+"),  # legacy builder
            _p(ERR, r"process \".*\" did not complete successfully: exit code"),  # BuildKit
            # the BuildKit built into Docker 20.10 (buildx's docker driver, a socket)
            _p(ERR, r"executor failed running \[.*\]: exit code: \d+"),
            _p(ERR, r"^(COPY|ADD) failed: "),
        ),
        "a Dockerfile step failed: {error}",
    ),
    Cause(
        "Dockerfile invalid",
        "Docker or BuildKit refused the Dockerfile",
        True,
        (
            _p(ERR, r"(dockerfile parse error[^\"]*)", re.IGNORECASE),
            _p(ERR, r"(failed to solve: dockerfile parse error.*)", re.IGNORECASE),
        ),
        "the Dockerfile is invalid: {group}",
    ),
    Cause(
        "environment refused",
        "repo2docker refused an environment file of the repository",
        True,
        (
            _p(ERR, r"Python version \S+ on \S+ is not supported"),
            _p(ERR, r"python_version must always be specified as 'x\.y'"),
            _p(ERR, r"environment\.yml should contain a dictionary"),
            _p(ERR, r"in \"environment\.yml\", line \d+"),  # ruamel's YAML syntax errors
            _p(ERR, r"Found invalid package name .* in apt\.txt"),
            _p(ERR, r"contains both a 'binder' and a '\.binder' directory"),
            _p(ERR, r"specified in runtime\.txt\. Please use a newer snapshot date"),
            _p(ERR, r"Failed to find a matching Julia version"),
            _p(ERR, r"The legacy buildpack has been removed"),
        ),
        "repo2docker refused the repository's environment: {error}",
    ),
    Cause(
        "builder",
        "builder/'s engine cannot reach or use BuildKit (daemon, TLS, buildx itself)",
        False,
        (
            _p(ERR, r"^the BuildKit daemon at \S+ is unreachable: "),
            _p(ERR, r"^TLS certificate refused talking to the BuildKit daemon "),
            _p(ERR, r"^docker buildx is missing: "),
            _p(ERR, r"^(BUILDKIT_HOST|BUILDKIT_TLS_DIR|DOCKER_CONFIG)=.* (is not|lacks) "),
            _p(ERR, r"^docker buildx create failed "),
        ),
        "{error}",
    ),
    Cause(
        "BuildKit silent",
        "buildx never got an answer from the BuildKit daemon",
        False,
        (_p(STEP, r"^\[internal\] waiting for connection$"),),
        "the BuildKit daemon did not answer: {error}",
    ),
    Cause(
        "push",
        "the registry refused or failed the image's push (BuildKit's image export)",
        False,
        (_p(STEP, r"^exporting to image$"),),
        "pushing {image} failed: {error}",
    ),
    Cause(
        "cache export",
        "the registry refused or failed the layer cache's export",
        False,
        (_p(STEP, r"^exporting cache to registry$"),),
        "exporting the build cache failed: {error}",
    ),
    Cause(
        "Docker unreachable",
        "repo2docker cannot reach the Docker daemon",
        False,
        (_p(OUT, r"Container engine initialization error|Check if docker is running"),),
        "the Docker daemon is unreachable: {found}",
    ),
    Cause(
        "configuration",
        "repo2docker refused its configuration (the service's settings)",
        False,
        (_p(OUT, r"^(?:traitlets\.traitlets\.)?TraitError: (.*)"),),
        "repo2docker refused its configuration: {group}",
    ),
    Cause(
        "command line",
        "repo2docker refused its command line (the service's settings)",
        False,
        (_p(OUT, r"^\S+: error: (.*)"),),
        "repo2docker refused its command line: {group}",
        Needs.EXIT_2,
    ),
    Cause(
        "push",
        "the push failed after the image was built (legacy builder)",
        False,
        (_p(ERR, r".+"),),
        "pushing {image} failed: {error}",
        Needs.IMAGE_BUILT,
    ),
    Cause(
        "fetch",
        "cloning the repository or checking out the commit failed",
        False,
        (_p(ERR, r"^Failed to (clone repository|check out ref)"), _p(ERR, r"^Command '\['git', ")),
        "fetching the repository failed: {error}{fatal}",
    ),
    Cause(
        "unknown",
        "anything else: not the commit's, until a row says otherwise",
        False,
        (_p(EXIT, r""),),
        "repo2docker exited with code {code}{error_suffix}",
    ),
)
"""The rule, in the order ``classify_failure`` walks it."""


@dataclass(frozen=True)
class Failure:
    """A failed run: the build record's message, and whether the commit caused it."""

    message: str
    remember: bool = False


_ERROR_PREFIX = "Error during build: "
_BUILDX_COMMAND = re.compile(r"^Command '\['docker', 'buildx', 'build'")
_BUILDX_ERROR = re.compile(r"^ERROR: (?:failed to build: )?(.*)")
_FAILED_STEP = re.compile(r"^ > (.+):$")
_STEP_PREFIX = re.compile(r"^(#\d+ )?(\d+\.\d+ )?")


@dataclass(frozen=True)
class _Run:
    """What the rows read of one failed run."""

    returncode: int
    lines: Sequence[LogLine]
    error: str

    def texts(self, where: Where) -> Iterator[str]:
        if where is Where.EXIT:
            yield str(self.returncode)
        elif where is Where.ERROR:
            if self.error:
                yield self.error
        elif where is Where.FAILED_STEP:
            for line in self.lines:
                if found := _FAILED_STEP.match(line.message.rstrip()):
                    yield found.group(1)
        else:
            for line in reversed(self.lines):
                if where is Where.GIT and line.phase != "fetching":
                    continue
                yield _STEP_PREFIX.sub("", line.message.strip(), count=1)

    def holds(self, needs: Needs) -> bool:
        if needs is Needs.EXIT_2:
            return self.returncode == 2
        if needs is Needs.IMAGE_BUILT:
            return _built(self.lines)
        return True


def classify_failure(returncode: int, lines: Sequence[LogLine], image: str) -> Failure:
    """Classify a repo2docker run that exited with ``returncode`` (non-zero; negative
    for a signal, as ``subprocess`` reports it) after writing ``lines`` (the last ones
    at least, as ``parse_log_line`` made them). ``image`` names the pushed image.

    The first row of ``CAUSES`` that matches decides (the last row matches anything).
    """
    run = _Run(returncode, lines, _last_error(lines))
    for cause in CAUSES:
        if not run.holds(cause.needs):
            continue
        for where, pattern in cause.patterns:
            for text in run.texts(where):
                found = pattern.search(text)
                if found is not None:
                    return Failure(_message(cause, run, image, found), cause.remembered)
    raise AssertionError("the last row of CAUSES matches every run")  # pragma: no cover


def _message(cause: Cause, run: _Run, image: str, found: re.Match[str]) -> str:
    fatal = _git_fatal(run.lines)
    return cause.message.format(
        code=run.returncode,
        signal=_signal_name(-run.returncode),
        image=image,
        error=run.error,
        error_suffix=f": {run.error}" if run.error else "",
        found=found.string.strip(),
        group=found.group(1) if found.re.groups else found.group(0),
        fatal=f" ({fatal})" if fatal else "",
    )


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
