"""Where builds run. One small interface, one implementation per place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..model import Build, LogLine


class Executor(Protocol):
    """Runs builds.

    A plain executor (``durable = False``, the local one) runs what it is given; the
    coordinator owns the queue and the limits. A durable executor (Kubernetes) holds
    the queue itself, in a place that outlives this process: the coordinator hands it
    every build at once, and after a restart hands it the unfinished builds again so
    that ``run`` attaches to them.

    Optional: ``async sweep()``, called once at start-up after ``recover``, removes
    what builds that no live process runs left behind (the local executor's working
    directories).
    """

    durable: bool
    backend: str
    """What builds run on, as readiness names it (``docker``, ``kubernetes``)."""

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        """Run ``build`` to the end. Returns when the image was pushed; raises BuildFailed.

        ``on_start`` is called when the build leaves the queue and starts, with a
        process id to record for ``recover`` (None when there is none).
        ``resume_lines``: a durable executor that attaches to a build already under
        way skips this many of its log lines (they are in the store already).
        """

    async def cancel(self, build: Build) -> None:
        """Stop a build; its ``run`` raises BuildFailed, even if it had not started yet."""

    async def recover(self, build: Build) -> bool:
        """Called at start-up for a build recorded as running.

        Returns True when the build is still being run by another live process
        (leave it alone); otherwise makes sure nothing of it is left running, so that
        it can be run again, and returns False."""

    async def check(self) -> None:
        """Return when what builds run on answers now; raise ``TemporaryError`` naming
        it and the problem otherwise. Cheap and bounded (readiness calls it often)."""

    async def close(self) -> None:
        """Release resources."""
