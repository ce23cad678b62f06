"""Builds tried again after a temporary failure before they started (issues 20 and 21).

A ``TemporaryError`` met before the executor started a build (the registry or the
build backend did not answer, credentials could not be read) is the world's fault,
not the commit's: the build goes back in the queue with a time before which it does
not run, and fails only after ``RetryPolicy.attempts`` tries, naming what could not
be reached. ``Retries`` keeps, for the builds of one process, how often each one met
such a failure and when it may run again, and wakes the scheduler then.

What it keeps is in memory: after a restart a queued build runs at once and its count
starts again (a restart is a retry of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TemporaryError


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how long apart, a build is tried after temporary failures."""

    attempts: int = 8
    """Tries in all, the first included; the failure of the last one fails the build.
    With the defaults and a 30 s ``retry_after`` the last try comes about 35 minutes
    after the first."""
    max_delay: float = 600.0
    """Seconds between two tries, at most."""

    def delay(self, retry_after: float, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure (1 for the first): the
        error's ``retry_after``, doubled for each failure before, at most
        ``max_delay``. Pure."""
        return float(min(retry_after * 2 ** max(failures - 1, 0), self.max_delay))


@dataclass(frozen=True)
class Retry:
    """The decision after a failure: try again after ``delay`` seconds (this was try
    ``attempt`` of ``attempts``), or give up (``delay`` is None)."""

    attempt: int
    attempts: int
    delay: float | None

    def note(self, error: TemporaryError) -> str:
        """The line for the build's log. Pure."""
        if self.delay is None:
            return f"{error}; giving up after {self.attempt} attempts"
        return (
            f"{error}; trying again in {self.delay:g} s (attempt {self.attempt} of {self.attempts})"
        )

    def failure(self, error: TemporaryError) -> str:
        """The build's error when it gives up: what could not be reached. Pure."""
        return f"could not start after {self.attempt} attempts: {error}"


class Retries:
    """The builds waiting for another try (see the module docstring). ``wake`` is
    called on the event loop when one of them may run again."""

    def __init__(self, policy: RetryPolicy, wake: Callable[[], None]) -> None:
        self.policy = policy
        self._wake = wake
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def failed(self, build_id: str, error: TemporaryError) -> Retry:
        """Count a temporary failure of ``build_id``; when it may be tried again, it
        is not due until the delay has passed (then ``wake`` is called)."""
        failures = self._failures.get(build_id, 0) + 1
        if failures >= self.policy.attempts:
            self.forget(build_id)
            return Retry(failures, self.policy.attempts, None)
        self._failures[build_id] = failures
        delay = self.policy.delay(error.retry_after, failures)
        loop = asyncio.get_running_loop()
        self._not_before[build_id] = loop.time() + delay
        old = self._timers.pop(build_id, None)
        if old is not None:
            old.cancel()
        self._timers[build_id] = loop.call_later(delay, self._due, build_id)
        return Retry(failures, self.policy.attempts, delay)

    def _due(self, build_id: str) -> None:
        self._timers.pop(build_id, None)
        self._not_before.pop(build_id, None)
        self._wake()

    def waiting(self, build_id: str) -> bool:
        """True while ``build_id`` must not run yet."""
        return build_id in self._not_before

    def forget(self, build_id: str) -> None:
        """The build ended (or was taken off the queue): nothing more to wait for."""
        self._failures.pop(build_id, None)
        self._not_before.pop(build_id, None)
        timer = self._timers.pop(build_id, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._not_before.clear()
