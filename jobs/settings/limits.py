"""``limits``, ``build_logs`` and ``quotas``: how much builds may take."""

from __future__ import annotations

from pydantic import Field

from .base import Section


class PhaseTimeouts(Section):
    fetch: float | None = Field(default=600.0, gt=0)
    """Seconds repo2docker may take to clone the repository and check out the commit
    (a git server that never answers fails here)."""

    build: float | None = Field(default=None, gt=0)
    """Seconds building the image may take, from the end of the fetch until the image
    is exported. Default: only ``build_timeout``."""

    push: float | None = Field(default=1800.0, gt=0)
    """Seconds pushing the image may take, from the start of its export until the
    registry has its manifest."""

    cache_export: float | None = Field(default=600.0, gt=0)
    """Seconds the export of BuildKit's layer cache to the registry may take after the
    image was pushed (or after it started, if that was later). When it runs out the
    export is cut, noted in the log, and the build is ``built`` as the registry has the
    image; the next build of the repository finds less cache."""

    def of(self, phase: str) -> float | None:
        """The limit of ``phase`` (a field's name; ``jobs.phases.Phase``)."""
        value = getattr(self, phase)
        return None if value is None else float(value)


class LimitSettings(Section):
    max_concurrent_builds: int = Field(default=2, ge=1)
    """Builds that may run at once; more wait in the queue."""

    max_concurrent_builds_per_repo: int = Field(default=1, ge=1)
    """Builds of one repository that may run at once."""

    build_timeout: float = Field(default=3600.0, gt=0)
    """Seconds a build may run, all phases together, before it is stopped and marked
    failed (not remembered). The registry is asked first: an image that is there makes
    the build ``built``."""

    phase_timeouts: PhaseTimeouts = PhaseTimeouts()
    """Deadlines of the phases of a build, each counted from the start of its phase
    (``null``: none of its own). A phase that runs out stops the build, which fails
    (not remembered) unless the registry has the image; ``build_timeout`` caps them
    all."""

    failure_memory: float = Field(default=86400.0, ge=0)
    """Seconds a failure of the commit's own (a failing Dockerfile step, an environment
    file repo2docker refuses) is remembered: until then, requests for that commit
    answer `failed-before` unless forced. 0 remembers no failure."""


class BuildLogSettings(Section):
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    """Bytes of log text stored for one build (all its attempts together). At the cap
    one line says that the log was cut, and nothing more of it is stored; the build
    goes on and its outcome is recorded. (Each line is also cut to its first 64 KiB,
    with a marker.)"""

    retention_days: float = Field(default=30.0, ge=0)
    """Days the log lines of a finished build are kept; the server then deletes them
    (the build's record stays). 0 keeps them forever."""


class QuotaLimits(Section):
    builds_per_window: int = Field(default=0, ge=0)
    """Builds that may be started in any ``window`` seconds (0: no limit). A build
    counts from the moment it is accepted (queued), unless it is cancelled or
    superseded before it starts; cache hits and joins of a running build never count."""

    window: float = Field(default=3600.0, gt=0)
    """Seconds of the sliding window ``builds_per_window`` counts in."""

    max_queued: int = Field(default=0, ge=0)
    """Builds that may be queued or running at once (0: no limit)."""

    @property
    def enabled(self) -> bool:
        return bool(self.builds_per_window or self.max_queued)


class QuotaSettings(Section):
    per_user: QuotaLimits = QuotaLimits()
    """For each requester: an API token's name, or a JupyterHub user or service."""

    per_repo: QuotaLimits = QuotaLimits()
    """For each repository, counting the builds people asked for (push webhooks and
    configured repositories are neither refused nor counted)."""
