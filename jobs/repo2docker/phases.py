"""A build's phases and their deadlines, followed from its log lines (issue 20, item 3).

One deadline for a whole build let a registry that never answered BuildKit's cache
export hold a build for an hour after its image was pushed, and then fail it. Each
phase now has a deadline of its own (``limits.phase_timeouts``), counted from the
moment the phase began, and ``limits.build_timeout`` stays the cap on the whole:

- ``fetch``: from the start until repo2docker's first ``building`` line (its clone and
  checkout; a git server that never answers stops here);
- ``build``: until the image is exported (BuildKit's ``#N exporting to image`` step;
  with repo2docker 2024.7 and Docker's legacy builder, ``Successfully tagged …``);
- ``push``: until that step is done (``#N DONE``, or its ``pushing manifest for … done``
  line; 2024.7: ``Successfully pushed …``);
- ``cache_export``: BuildKit's ``#N exporting cache to registry`` step, until it ends.
  BuildKit may run it beside the image's export; its deadline counts from the later of
  its start and the end of the push, so a slow cache never cuts a push under way.

The facts come from repo2docker's JSON ``phase`` and BuildKit's plain progress lines,
as real runs of repo2docker 2024.7.0 and 2026.4.0 (buildx v0.38, buildkitd v0.34)
print them (tests/unit/golden/phases/). Pure: the caller gives the time (any clock,
the same for every call) and stops the build when ``expired`` says so.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from ..model import LogLine
from ..settings import PhaseTimeouts


class Phase(enum.StrEnum):
    FETCH = "fetch"
    BUILD = "build"
    PUSH = "push"
    CACHE_EXPORT = "cache_export"

    @property
    def doing(self) -> str:
        """What the phase does, for messages: ``fetching the repository``."""
        return _DOING[self]


_DOING = {
    Phase.FETCH: "fetching the repository",
    Phase.BUILD: "building the image",
    Phase.PUSH: "pushing the image",
    Phase.CACHE_EXPORT: "exporting the layer cache",
}

_STEP = re.compile(r"^#(\d+) (.*)$")
_STEP_ENDED = re.compile(r"^(DONE\b|ERROR\b|CANCELED$)")
_EXPORT_IMAGE = "exporting to image"
_EXPORT_CACHE = re.compile(r"^exporting cache\b")
_MANIFEST_PUSHED = re.compile(r"^pushing manifest for \S+ .*\bdone$")
_LEGACY_TAGGED = "Successfully tagged "
_LEGACY_PUSHED = "Successfully pushed "


@dataclass(frozen=True)
class Expired:
    """A phase that ran past its deadline: which, its limit in seconds, and whether the
    image had been pushed by then (a cache export cut after the push loses only cache)."""

    phase: Phase
    limit: float
    pushed: bool

    @property
    def message(self) -> str:
        """What the build's record and log say."""
        setting = f"limits.phase_timeouts.{self.phase}"
        if self.phase is Phase.CACHE_EXPORT and self.pushed:
            return (
                f"the layer cache export did not finish within {self.limit:g} seconds "
                f"({setting}) after the image was pushed; it was cut"
            )
        return f"{self.phase.doing} did not finish within {self.limit:g} seconds ({setting})"


@dataclass
class PhaseTracker:
    """Where one build is, from its log lines; ``start`` is when its process started.

    ``feed`` every line as it arrives, ``deadline`` tells when to look next, and
    ``expired`` whether a phase has run past its limit. A phase that never shows in the
    output (repo2docker 2024.7 has no cache export) never expires.
    """

    start: float
    started: dict[Phase, float] = field(default_factory=dict)
    ended: dict[Phase, float] = field(default_factory=dict)
    pushed_at: float | None = None
    """When the image was in the registry, by the build's own output."""
    _image_step: str | None = None
    _cache_step: str | None = None

    def __post_init__(self) -> None:
        self.started.setdefault(Phase.FETCH, self.start)

    @property
    def active(self) -> list[Phase]:
        """The phases under way, in their order."""
        return [phase for phase in Phase if phase in self.started and phase not in self.ended]

    def _begin(self, phase: Phase, now: float) -> None:
        if phase in self.started:
            return
        self.started[phase] = now
        # a later phase ends the earlier ones (a cache export does not end the push)
        before = (Phase.FETCH,) if phase is Phase.BUILD else (Phase.FETCH, Phase.BUILD)
        for earlier in before:
            if earlier in self.started:
                self.ended.setdefault(earlier, now)

    def _end(self, phase: Phase, now: float) -> None:
        if phase in self.started:
            self.ended.setdefault(phase, now)

    def _pushed(self, now: float) -> None:
        if self.pushed_at is None:
            self.pushed_at = now
        self._end(Phase.PUSH, now)

    def feed(self, line: LogLine, now: float) -> None:
        """Take one log line (as ``jobs.repo2docker.log_lines.parse_log_line`` made it) read at
        ``now``."""
        message = line.message.strip()
        if line.phase == "building":
            self._begin(Phase.BUILD, now)
        elif line.phase == "pushing":
            self._begin(Phase.PUSH, now)
            if message.startswith(_LEGACY_PUSHED):
                self._pushed(now)
            return
        if message.startswith(_LEGACY_TAGGED):
            self._begin(Phase.PUSH, now)
            return
        step = _STEP.match(message)
        if step is not None:
            self._step(step.group(1), step.group(2), now)

    def _step(self, number: str, text: str, now: float) -> None:
        if text == _EXPORT_IMAGE:
            self._image_step = number
            self._begin(Phase.PUSH, now)
        elif _EXPORT_CACHE.match(text):
            self._cache_step = number
            self._begin(Phase.CACHE_EXPORT, now)
        elif number == self._image_step:
            if _MANIFEST_PUSHED.match(text) or text.startswith("DONE"):
                self._pushed(now)
            elif _STEP_ENDED.match(text):
                self._end(Phase.PUSH, now)
        elif number == self._cache_step and _STEP_ENDED.match(text):
            self._end(Phase.CACHE_EXPORT, now)

    def _deadline_of(self, phase: Phase, limit: float) -> float:
        begun = self.started[phase]
        if phase is Phase.CACHE_EXPORT and Phase.PUSH in self.started:
            if Phase.PUSH not in self.ended:
                return float("inf")  # the push's own deadline governs meanwhile
            begun = max(begun, self.ended[Phase.PUSH])
        return begun + limit

    def deadline(self, limits: PhaseTimeouts) -> float:
        """When the first phase under way reaches its limit (``inf``: none will)."""
        times = [
            self._deadline_of(phase, limit)
            for phase in self.active
            if (limit := limits.of(phase)) is not None
        ]
        return min(times, default=float("inf"))

    def expired(self, limits: PhaseTimeouts, now: float) -> Expired | None:
        """The phase under way that is past its limit at ``now``, if any."""
        for phase in self.active:
            limit = limits.of(phase)
            if limit is not None and now >= self._deadline_of(phase, limit):
                return Expired(phase, limit, self.pushed_at is not None)
        return None
