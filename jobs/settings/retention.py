"""``retention``: which images ``binderhub-service retention`` deletes from the registry
(issue 26)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section


class RetentionSettings(Section):
    """What a retention run keeps. Everything else it deletes from the registry,
    except images the store has no record of and tags that are not commit SHAs."""

    keep_per_ref: int = 3
    """How many of the newest built images of each repository's branch, tag and
    default branch are kept. At least 1."""

    keep_days: float = Field(default=30.0, gt=0)
    """Images built or requested less than this many days ago are kept. At least
    ``registry.cache_seconds``: another replica may answer "exists" for that long."""

    in_use: Literal["kubernetes", "none"] = "kubernetes"
    """Where the images in use are read: ``kubernetes``, every unfinished pod of
    ``in_use_namespaces`` (the user servers'); ``none``, nowhere, for a service whose
    images no server runs from this registry. Retention never deletes an image in use,
    and stops when it cannot read them."""

    in_use_namespaces: list[str] = []
    """Namespaces whose pods' images are in use (the hub's). Default: the namespace the
    service runs in (``kubernetes.namespace``)."""

    guard_timeout: float = Field(default=30.0, gt=0)
    """Seconds the images in use and the catalog may take to read before each
    deletion; longer, and the run stops without deleting anything more."""

    @field_validator("keep_per_ref")
    @classmethod
    def _keeps_something(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                "must be at least 1: a policy that keeps no newest image of a branch "
                "would keep nothing"
            )
        return value
