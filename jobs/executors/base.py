"""The executor interface: where builds run, as the coordinator sees it.

Two kinds, two types. A plain ``Executor`` (the local one) runs what it is given;
the coordinator owns the queue and applies the limits (``jobs.concurrency``). A
``DurableExecutor`` (Kubernetes) holds the queue itself, in a place that outlives
this process and that every replica sees: the coordinator hands it every build at
once, after a restart hands it the unfinished builds again so that ``run`` attaches
to them, and asks it to ``adopt`` the builds it finds there that nobody follows.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from ..checks import Check
from ..model import Build, CountedBuild, LogLine


@dataclass(frozen=True)
class Note(LogLine):
    """A line an executor writes about a build (what it created or found), not the
    build's own output. Stored in the build's log like any line, but not counted in
    ``resume_lines``: counting it would make a resumed build skip one line of its
    own output for each note."""


class Executor(abc.ABC):
    """Runs builds."""

    backend: str
    """What builds run on, as readiness names it (``docker``, ``kubernetes``)."""

    @abc.abstractmethod
    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        """Run ``build`` to the end. Returns when the image was pushed; raises BuildFailed.

        Raises ``TemporaryError`` instead when, before anything of the build started
        (before ``on_start``), what it needs does not answer: the build backend, the
        BuildKit daemon, the API server, the push credentials. The coordinator then
        puts the build back in its queue for a while (``jobs.coordinator.retries``).

        ``on_start`` is called when the build leaves the queue and starts, with a
        process id to record for ``recover`` (None when there is none).
        ``on_log`` gets the build's output, line by line, and the executor's notes (``Note``).
        ``resume_lines``: how many lines of the build's output (no notes) are stored
        already. An executor that attaches to a build under way skips that many; one
        that starts the build afresh ignores it.
        """

    @abc.abstractmethod
    async def cancel(self, build: Build) -> None:
        """Stop a build; its ``run`` raises BuildFailed, even if it had not started yet."""

    @abc.abstractmethod
    async def recover(self, build: Build) -> bool:
        """Called at start-up for a build recorded as running.

        Returns True when the build is still being run by another live process
        (leave it alone); otherwise makes sure nothing of it is left running, so that
        it can be run again, and returns False."""

    async def sweep(self) -> None:
        """Called once at start-up, after ``recover``: remove what builds that no live
        process runs left behind (the local executor's working directories). By
        default there is nothing to remove."""
        return None

    @abc.abstractmethod
    async def check(self) -> None:
        """Return when what builds run on answers now; raise ``TemporaryError`` naming
        it and the problem otherwise. Cheap and bounded."""

    def checks(self) -> dict[str, Check]:
        """What builds run on, one named check per dependency (``docker``,
        ``kubernetes``, ``buildkit``), for readiness to report each on its own
        (``jobs.readiness``). By default the one ``check``, named ``backend``."""
        return {self.backend: self.check}

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources. Builds a durable executor holds run on without it."""


class DurableExecutor(Executor):
    """An executor whose queue and builds outlive this process (see the module
    docstring). It applies the concurrency limits itself; the coordinator never does."""

    async def recover(self, build: Build) -> bool:
        """Nothing of a build runs in this process: ``run`` attaches to it again."""
        return False

    @abc.abstractmethod
    async def adopt(self, found: Callable[[Build], None]) -> None:
        """Call ``found`` with the build of every queued or running build of this
        instance that this process does not follow: each one there now (oldest first),
        then each new one as it appears, until ``close``. Another replica's builds, and
        those queued before a store was lost, are thereby followed by this process too.
        ``found`` is called on the event loop and must not block."""

    @abc.abstractmethod
    def counted_builds(self) -> list[CountedBuild]:
        """For quotas: the builds of this instance as every replica sees them alike
        (queued, running and finished ones still kept). A cancelled or superseded
        build is not among them. Cheap: no I/O."""
