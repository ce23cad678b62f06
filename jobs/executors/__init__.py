"""Where builds run. One small interface, one implementation per place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..model import Build, LogLine


class Executor(Protocol):
    """Runs builds. The coordinator owns the queue; an executor only runs what it is given."""

    async def run(
        self, build: Build, on_log: Callable[[LogLine], None], on_start: Callable[[int], None]
    ) -> None:
        """Run ``build`` to the end. Returns when the image was pushed; raises BuildFailed.

        ``on_start`` receives a handle (a pid) to record for ``recover``.
        """

    async def cancel(self, build: Build) -> None:
        """Stop a build; its ``run`` raises BuildFailed, even if it had not started yet."""

    async def recover(self, build: Build) -> bool:
        """Called at start-up for a build recorded as running.

        Returns True when the build is still being run by another live process
        (leave it alone); otherwise makes sure nothing of it is left running, so that
        it can be run again, and returns False."""

    async def close(self) -> None:
        """Release resources."""
