"""Which images of the registry to keep, and why; the rest is deleted (issue 26).

``plan_retention`` is pure: from what the registry holds, what the store knows of each
image, the catalog's offer, the images running user servers use, the time and the rules,
to a plan. It never deletes a manifest that a kept image shares (deleting a manifest by
digest deletes every tag that names it), an image the store has no record of, or a tag
that is not a commit SHA (the BuildKit cache, anything someone else pushed).
docs/design-prepull.md describes the whole run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

COMMIT_TAG = re.compile(r"^[0-9a-f]{40}$")
"""The tags the service pushes: full commit SHAs (``jobs.naming``)."""

GROUPED_KINDS = ("branch", "tag", "head")
"""Ref kinds whose newest images are kept: refs that move. A bare commit (``commit``) or
an ``other`` ref names no line of work; it is kept while recent, offered or in use."""

REASONS = ("in-use", "offered", "newest", "recent", "unrecorded", "not-ours", "shares-digest")
"""Why an image is kept, in the order they are reported."""


@dataclass(frozen=True)
class RegistryImage:
    """One tag in the registry: ``image`` (``host/repository:tag``), its parts, and the
    ``digest`` (``sha256:…``) of the manifest it names."""

    image: str
    repository: str
    tag: str
    digest: str


@dataclass(frozen=True)
class ImageRecord:
    """What the store knows of one image: its repository URL ``repo``, the ``ref`` and
    ``ref_kind`` of its last successful build, when that finished (``built_at``, Unix
    seconds) and the newest request of it (``last_requested_at``, None if unknown)."""

    image: str
    repo: str
    ref: str
    ref_kind: str
    built_at: float
    last_requested_at: float | None = None


@dataclass(frozen=True)
class RetentionRules:
    """``keep_per_ref``: newest built images kept per repository and ref (≥ 1);
    ``keep_seconds``: anything built or requested within this many seconds is kept."""

    keep_per_ref: int
    keep_seconds: float

    def __post_init__(self) -> None:
        if self.keep_per_ref < 1:
            raise ValueError("keep_per_ref must be at least 1: the policy would keep nothing")
        if self.keep_seconds <= 0:
            raise ValueError("keep_seconds must be positive")


@dataclass(frozen=True)
class Kept:
    image: str
    digest: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Doomed:
    """One manifest to delete: ``repository`` and ``digest``, and every ``images`` (tag)
    that names it; ``built_at`` is the newest of their builds."""

    repository: str
    digest: str
    images: tuple[str, ...]
    built_at: float


@dataclass(frozen=True)
class RetentionPlan:
    """``keep``: every image kept, with its reasons, sorted by image; ``delete``: the
    manifests to delete, oldest first (ties by repository and digest)."""

    keep: tuple[Kept, ...]
    delete: tuple[Doomed, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "keep": [
                {"image": k.image, "digest": k.digest, "reasons": list(k.reasons)}
                for k in self.keep
            ],
            "delete": [
                {
                    "repository": d.repository,
                    "digest": d.digest,
                    "images": list(d.images),
                    "built_at": d.built_at,
                }
                for d in self.delete
            ],
        }


def newest_per_ref(records: Iterable[ImageRecord], keep_per_ref: int) -> set[str]:
    """The ``keep_per_ref`` newest images (by ``built_at``, then image name) of each
    repository's branch, tag and default branch (``GROUPED_KINDS``)."""
    groups: dict[tuple[str, str, str], list[ImageRecord]] = {}
    for record in records:
        if record.ref_kind in GROUPED_KINDS:
            groups.setdefault((record.repo, record.ref_kind, record.ref), []).append(record)
    newest: set[str] = set()
    for group in groups.values():
        group.sort(key=lambda r: (-r.built_at, r.image))
        newest.update(r.image for r in group[:keep_per_ref])
    return newest


def _own_reasons(
    image: RegistryImage,
    record: ImageRecord | None,
    protected: tuple[frozenset[str], frozenset[str]],
    newest: set[str],
    recent_since: float,
) -> list[str]:
    """The reasons ``image`` is kept for itself; ``protected`` is (in use, offered)."""
    in_use, offered = protected
    reasons = []
    if image.image in in_use or image.digest in in_use:
        reasons.append("in-use")
    if image.image in offered:
        reasons.append("offered")
    if record is not None:
        if image.image in newest:
            reasons.append("newest")
        last = max(record.built_at, record.last_requested_at or 0.0)
        if last >= recent_since:
            reasons.append("recent")
    else:
        reasons.append("unrecorded")
    if not COMMIT_TAG.match(image.tag):
        reasons.append("not-ours")
    return reasons


def plan_retention(
    images: Iterable[RegistryImage],
    records: Mapping[str, ImageRecord],
    offered: Iterable[str],
    in_use: Iterable[str],
    now: float,
    rules: RetentionRules,
) -> RetentionPlan:
    """The plan for ``images`` (the registry's tags under the service's repositories).

    ``records``: image name -> its record; ``offered``: the catalog's offer (image
    names); ``in_use``: image names or digests running user servers use; ``now``: Unix
    seconds. An image is kept for every reason of ``REASONS`` that holds; a manifest is
    deleted only when none of its tags is kept. Pure and deterministic."""
    images = sorted(set(images), key=lambda i: i.image)
    protected = (frozenset(in_use), frozenset(offered))
    newest = newest_per_ref(records.values(), rules.keep_per_ref)
    recent_since = now - rules.keep_seconds
    reasons = {
        i.image: _own_reasons(i, records.get(i.image), protected, newest, recent_since)
        for i in images
    }
    kept_manifests = {(i.repository, i.digest) for i in images if reasons[i.image]}
    for i in images:
        if not reasons[i.image] and (i.repository, i.digest) in kept_manifests:
            reasons[i.image] = ["shares-digest"]
    doomed: dict[tuple[str, str], list[RegistryImage]] = {}
    for i in images:
        if not reasons[i.image]:
            doomed.setdefault((i.repository, i.digest), []).append(i)
    delete = [
        Doomed(
            repo, digest, tuple(t.image for t in tags), max(records[t.image].built_at for t in tags)
        )
        for (repo, digest), tags in doomed.items()
    ]
    delete.sort(key=lambda d: (d.built_at, d.repository, d.digest))
    keep = tuple(
        Kept(i.image, i.digest, tuple(r for r in REASONS if r in reasons[i.image]))
        for i in images
        if reasons[i.image]
    )
    return RetentionPlan(keep, tuple(delete))


def freed_bytes(doomed: Iterable[Mapping[str, int]], kept: Iterable[Mapping[str, int]]) -> int:
    """What deleting the ``doomed`` manifests frees, at most: the bytes of the blobs
    (digest -> bytes, ``RegistryAdmin.blobs``) they hold on to that no ``kept``
    manifest does. At most: a blob an image outside the plan shares stays, and the
    registry frees blobs only when it collects garbage. Pure."""
    return sum(freed_per_manifest(list(doomed), kept))


def freed_per_manifest(
    doomed: Sequence[Mapping[str, int]], kept: Iterable[Mapping[str, int]]
) -> list[int]:
    """What deleting each of the ``doomed`` manifests (in the order they are deleted)
    frees, at most: each blob no ``kept`` manifest holds counts once, for the last doomed
    manifest that holds it (the blob goes when that one does). Their sum is
    ``freed_bytes``; a run that stops half-way freed the sum of those it deleted. Pure."""
    held = {digest for blobs in kept for digest in blobs}
    last: dict[str, int] = {}
    for index, blobs in enumerate(doomed):
        for digest in blobs:
            if digest not in held:
                last[digest] = index
    freed = [0] * len(doomed)
    for index, blobs in enumerate(doomed):
        freed[index] = sum(size for d, size in blobs.items() if last.get(d) == index)
    return freed
