"""Honest in-memory stand-ins for the registry and the executor, for the fast tier.

Each keeps the contract of the interface it stands in for (``jobs.registry.client.Registry``,
``jobs.executors.Executor``); ``tests/contract`` runs the same tests against a fake and
the real one. Tests drive the fakes through their own methods (``FakeRegistry.push``,
``FakeExecutor.finish``), never by patching.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from jobs.errors import BuildFailed, RegistryError, TemporaryError
from jobs.executors import Executor
from jobs.model import Build, LogLine


class FakeRegistry:
    """A registry in a set. Like ``RegistryClient``: a yes is remembered for
    ``cache_seconds`` of ``clock`` and answered without asking again; a registry that
    is ``down`` raises ``RegistryError``, never "missing"."""

    def __init__(
        self, *, cache_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.images: set[str] = set()
        """What the registry holds."""
        self.down = False
        self.lookups = 0
        """How many times ``has_image`` reached the registry (not its cache)."""
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._known: dict[str, float] = {}

    def push(self, image: str) -> None:
        """Put ``image`` in the registry (what a build does)."""
        self.images.add(image)

    def known(self, image: str) -> bool:
        seen = self._known.get(image)
        return seen is not None and self._clock() - seen <= self._cache_seconds

    def remember(self, image: str) -> None:
        self._known[image] = self._clock()

    def forget(self, image: str) -> None:
        self._known.pop(image, None)

    async def has_image(self, image: str, *, use_cache: bool = True) -> bool:
        if use_cache and self.known(image):
            return True
        if self.down:
            raise RegistryError("the fake registry is down")
        self.lookups += 1
        if image in self.images:
            self.remember(image)
            return True
        return False

    async def check(self) -> None:
        if self.down:
            raise RegistryError("the fake registry is down")

    async def aclose(self) -> None:
        pass


class FakeExecutor(Executor):
    """Runs builds that end when the test says (``finish``), pushing their image to
    ``registry`` when they succeed, like the local executor (a plain one: the
    coordinator owns the queue). ``elsewhere`` holds the ids of builds "another live
    process" runs, for ``recover``."""

    backend = "fake"

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.started: list[str] = []
        """Ids of the builds that started, in order."""
        self.elsewhere: set[str] = set()
        self.down = False
        """What builds run on does not answer: ``check`` and ``run`` raise
        ``TemporaryError`` (``run`` before it starts anything, like the real ones)."""
        self.output: list[str] = []
        """Lines every build prints after its first (as repo2docker's output would)."""
        self._cancelled: set[str] = set()
        self._ends: dict[str, asyncio.Future[BuildFailed | None]] = {}
        self._running: dict[str, asyncio.Event] = {}

    def _end(self, build_id: str) -> asyncio.Future[BuildFailed | None]:
        if build_id not in self._ends:
            self._ends[build_id] = asyncio.get_running_loop().create_future()
        return self._ends[build_id]

    def _started(self, build_id: str) -> asyncio.Event:
        return self._running.setdefault(build_id, asyncio.Event())

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        if build.id in self._cancelled:  # before it started
            raise BuildFailed("cancelled")
        if self.down:  # what builds run on does not answer: nothing started
            raise TemporaryError("the fake executor is down")
        end = self._end(build.id)
        on_start(None)
        self.started.append(build.id)
        self._started(build.id).set()
        on_log(LogLine("build", f"building {build.image}"))
        for message in self.output:
            on_log(LogLine("build", message))
        failure = await asyncio.shield(end)
        if failure is not None:
            raise failure
        self.registry.push(build.image)

    async def running(self, build_id: str) -> None:
        """Return once build ``build_id`` has started."""
        await self._started(build_id).wait()

    def finish(self, build_id: str, failure: BuildFailed | None = None) -> None:
        """End build ``build_id`` (before or after it started): built, or ``failure``."""
        end = self._end(build_id)
        if not end.done():
            end.set_result(failure)

    async def cancel(self, build: Build) -> None:
        self._cancelled.add(build.id)
        self.finish(build.id, BuildFailed("cancelled"))

    async def recover(self, build: Build) -> bool:
        return build.id in self.elsewhere

    async def check(self) -> None:
        if self.down:
            raise TemporaryError("the fake executor is down")

    async def close(self) -> None:
        pass
