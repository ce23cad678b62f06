"""The records the pipeline keeps and hands out."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


class BuildState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    BUILT = "built"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"

    @property
    def finished(self) -> bool:
        return self not in (BuildState.QUEUED, BuildState.RUNNING)


ACTIVE_STATES = (BuildState.QUEUED, BuildState.RUNNING)

DELETION_PREFIX = "superseded by the deletion of "
"""How the error of a build superseded by the deletion of its ref begins
(``coordinator.push.deletion_error``): watchers and forges tell it from a build
superseded by a newer commit."""


@dataclass
class Build:
    """One build of one image. ``id`` is stable; ``image`` is the identity of the work."""

    id: str
    repo: str
    ref: str
    ref_kind: str
    sha: str
    image: str
    name: str
    state: BuildState
    trigger: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    error_remembered: bool = False
    """A failure of the commit itself: asking again is refused unless forced."""
    attempts: int = 0
    supersedable: bool = True
    """True while only a moving ref asked for it (a branch, ``HEAD``, a pushed tag);
    False once anyone asked for this exact commit (by SHA, a tag's name, another ref):
    then a newer commit of the ref, or its deletion, must not cancel it."""
    pid: int | None = None
    requester: str | None = None
    """Who asked for it by name (an API token's name, ``user:<name>`` of JupyterHub);
    None for builds nobody asked for (push webhooks). Counted by quotas; not shown in
    the API, where every reader would see every user's name."""
    provider: str = "git"
    """Where the content comes from: ``git`` (``repo`` is a repository, ``sha`` a
    commit), or a content provider (issue 25: ``zenodo``; ``repo`` is the record's page,
    ``sha`` the version, ``jobs.sources.records.record_content`` what repo2docker
    fetches)."""

    @property
    def content(self) -> str:
        """How messages name what was built: ``commit <sha>``, ``zenodo version <v>``."""
        return (
            f"commit {self.sha}"
            if self.provider == "git"
            else f"{self.provider} version {self.sha}"
        )

    def failure_remembered_until(self, memory: float) -> float | None:
        """When this build's failure stops being remembered (epoch seconds, ``memory``
        seconds after it ended); None when it is not a remembered failure at all."""
        if self.state is not BuildState.FAILED or not self.error_remembered or memory <= 0:
            return None
        return (self.finished_at or self.created_at) + memory

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = str(self.state)
        del data["pid"], data["supersedable"], data["error_remembered"], data["requester"]
        return data


@dataclass(frozen=True)
class BuildOutcome:
    """The answer to a build request.

    ``build`` is None for a cache hit: the image exists and nothing was recorded.
    ``status`` says what happened: ``created``, ``joined`` (an identical build was
    already queued or running), ``cached``, or ``failed-before``.
    """

    status: str
    repo: str
    ref: str
    sha: str
    image: str
    build: Build | None = None

    def to_json(self) -> dict[str, Any]:
        if self.build is not None:
            data = self.build.to_json()
        else:
            data = {
                "id": None,
                "repo": self.repo,
                "ref": self.ref,
                "sha": self.sha,
                "image": self.image,
                "state": str(BuildState.BUILT),
            }
        data["outcome"] = self.status
        return data


@dataclass(frozen=True)
class LogLine:
    """One line of a build's log, with the phase repo2docker reported for it."""

    phase: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CountedBuild:
    """What a quota counter needs to know of one build (``jobs.coordinator.quotas``), as a durable
    executor reports the builds it holds (``executors.base.DurableExecutor``)."""

    build_id: str
    requester: str | None
    repo: str
    created_at: float
    active: bool

    @classmethod
    def of(cls, build: Build) -> CountedBuild:
        return cls(
            build.id, build.requester, build.repo, build.created_at, not build.state.finished
        )


@dataclass(frozen=True)
class ImageDeletion:
    """One image retention deleted (issue 26): ``image`` (``host/repository:tag``), the
    ``digest`` of the manifest deleted with it, when (``deleted_at``, Unix seconds) and
    by which run (``run_id``). One manifest's deletion is one record per tag.
    ``freed_bytes``: what deleting the manifest freed at most (its blobs that no kept
    manifest and no later deletion of the run holds, ``policy.freed_per_manifest``), the
    same on each of its tags' records; None when the registry could not say."""

    image: str
    repository: str
    digest: str
    deleted_at: float
    run_id: str
    freed_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeletionTotals:
    """Everything retention ever recorded deleting: ``images`` (tags), ``manifests``
    (one per run and digest) and ``freed_bytes`` (their sum; manifests whose size the
    registry could not say count 0)."""

    images: int = 0
    manifests: int = 0
    freed_bytes: int = 0


def catalog_json(catalog: Mapping[str, Sequence[Build]]) -> dict[str, Any]:
    """``BuildService.catalog()`` (repository URL -> its built images, newest first) as
    ``GET /api/v1/images`` answers it: ``{"repos": [{"repo", "images": [{"image",
    "sha", "ref", "ref_kind", "built_at" (Unix seconds), "build_id"}]}]}``."""
    return {
        "repos": [
            {
                "repo": repo,
                "images": [
                    {
                        "image": build.image,
                        "sha": build.sha,
                        "ref": build.ref,
                        "ref_kind": build.ref_kind,
                        "built_at": build.finished_at,
                        "build_id": build.id,
                    }
                    for build in builds
                ],
            }
            for repo, builds in catalog.items()
        ]
    }
