"""What happens to a build, told: its log lines stored and sent to watchers, its states
sent to watchers and written to the service's log.

The intake (a build queued, superseded, kept after its ref's deletion) and the runner
(started, each line of its output, finished) tell watchers through the same
``Announcer``: every line and error is redacted before it is stored (issue 20), a
build's log stops at ``build_logs.max_bytes``, and each state a build enters is one INFO
line of the service's log.
"""

from __future__ import annotations

import logging

from ..errors import TemporaryError
from ..events import BuildEvent, EventHub
from ..model import Build, BuildState, LogLine
from ..redaction import Redactor
from ..settings import Settings
from ..store import Store

log = logging.getLogger("jobs.service")
"""The service's log of builds: operators read it under this name."""


class Announcer:
    """See the module docstring."""

    def __init__(self, settings: Settings, store: Store, events: EventHub) -> None:
        self._settings = settings
        self._store = store
        self._events = events
        self.redact = Redactor(settings)
        """Applied to every log line and error before they are stored (issue 20)."""

    def line(self, build: Build, line: LogLine, *, builder: bool = False) -> None:
        """Store ``line`` (redacted) in ``build``'s log and send it to its watchers;
        past the log's cap it is neither stored nor sent, and during a database outage
        it is only sent. ``builder``: a line of the build's own output (a resumed build
        skips those already stored)."""
        message = self.redact(line.message)
        try:
            stored = self._store.append_log(
                build.id,
                line.phase,
                message,
                builder=builder,
                max_bytes=self._settings.build_logs.max_bytes,
            )
        except TemporaryError as e:
            # a database outage: live watchers still get the line; the stored log lacks it
            log.warning("build %s: a log line could not be stored: %s", build.id, e)
            self._events.publish(BuildEvent(build.id, "log", line.phase, message))
            return
        if stored is not None:  # None: past the build's log cap, neither stored nor sent
            seq, phase, message = stored
            self._events.publish(BuildEvent(build.id, "log", phase, message, seq=seq))

    def state(self, build: Build) -> None:
        """Tell watchers (and the forge) the state ``build`` entered; log it at INFO."""
        log_state(build)
        self._events.publish(
            BuildEvent(build.id, "state", "", build.error or "", state=str(build.state))
        )


def log_state(build: Build) -> None:
    """One INFO line for each state a build enters: queued, started, finished (with
    its state and error). It names the build, its repository, ref, commit (a record's
    version as ``<provider> version <v>``: ``Build.content``), image, trigger and who
    asked (``-`` for nobody: a push), in the text and as fields of the JSON log."""
    step = {BuildState.QUEUED: "queued", BuildState.RUNNING: "started"}.get(
        build.state, f"finished {build.state}"
    )
    requester = build.requester or "-"
    log.info(
        "build %s %s: %s %s %s image %s trigger %s requester %s%s",
        build.id,
        step,
        build.repo,
        build.ref,
        build.content,
        build.image,
        build.trigger,
        requester,
        f": {build.error}" if build.error else "",
        extra={
            "build_id": build.id,
            "state": str(build.state),
            "repo": build.repo,
            "ref": build.ref,
            "commit": build.sha,
            "image": build.image,
            "trigger": build.trigger,
            "requester": requester,
            "error": build.error,
        },
    )
