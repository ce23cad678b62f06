"""One retention run: read what the registry holds, plan (``jobs.retention.policy``),
delete what the plan names unless the guard says otherwise, and record each deletion
(issue 26; docs/design-prepull.md).

Safety: before every deletion the guard reads again what must never be deleted (the
images running user servers use, the catalog's offer, anything requested since the
run began). If the guard cannot answer, fails or does not answer within
``guard_timeout`` seconds, the run stops: nothing more is deleted, and the report says
why. A registry error stops the run too. A dry run reads and plans, and deletes and
records nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import RegistryError, RetentionGuardError
from ..model import Build, ImageDeletion
from ..registry.admin import RegistryAdmin
from ..registry.client import Registry, split_image
from ..store import Store
from .policy import (
    Doomed,
    ImageRecord,
    RegistryImage,
    RetentionPlan,
    RetentionRules,
    freed_per_manifest,
    plan_retention,
)


@dataclass(frozen=True)
class Protection:
    """What must not be deleted now: ``in_use`` (image names or digests running user
    servers use) and ``offered`` (the catalog's offer, image names)."""

    in_use: frozenset[str] = frozenset()
    offered: frozenset[str] = frozenset()
    requested: frozenset[str] = frozenset()
    """Images requested since the run began (``Store.last_requests``): someone is about
    to start them."""

    def covers(self, doomed: Doomed) -> bool:
        """Whether any tag of ``doomed``, or its digest, is protected. Pure."""
        names = set(doomed.images)
        protected = self.in_use | self.offered | self.requested
        return doomed.digest in self.in_use or bool(names & protected)


Guard = Callable[[], Awaitable[Protection]]
"""Reads the ``Protection`` now (the Kubernetes API, the store); raises when it cannot."""


@dataclass(frozen=True)
class RetentionReport:
    """What a run did: its ``plan``, the manifests ``deleted``, those ``spared`` (the
    guard protected them after the plan was made), and ``stopped``: why the run ended
    before the plan's end (None when it did not). ``dry_run``: nothing was deleted."""

    run_id: str
    dry_run: bool
    plan: RetentionPlan
    deleted: tuple[Doomed, ...] = ()
    spared: tuple[Doomed, ...] = ()
    stopped: str | None = None
    not_deleted: tuple[Doomed, ...] = field(default=())
    """The plan's deletions not attempted because the run stopped."""
    freed_bytes: int | None = None
    """What the plan's deletions free at most (``policy.freed_bytes``); None when the
    registry could not say."""

    def to_json(self) -> dict[str, object]:
        def images(doomed: tuple[Doomed, ...]) -> list[str]:
            return [image for d in doomed for image in d.images]

        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "plan": self.plan.to_json(),
            "deleted": images(self.deleted),
            "spared": images(self.spared),
            "not_deleted": images(self.not_deleted),
            "stopped": self.stopped,
            "freed_bytes": self.freed_bytes,
        }

    def summary(self) -> list[str]:
        """Lines for people: one per image deleted (or, in a dry run, to delete), one
        per image kept with its reasons, then the totals and why the run stopped."""
        doomed = self.plan.delete if self.dry_run else self.deleted
        verb = "would delete" if self.dry_run else "deleted"
        lines = [f"{verb} {image} ({d.digest})" for d in doomed for image in d.images]
        lines += [
            f"spared {image} (in use or offered now)" for d in self.spared for image in d.images
        ]
        lines += [f"kept {k.image}: {', '.join(k.reasons)}" for k in self.plan.keep]
        count = sum(len(d.images) for d in doomed)
        lines.append(f"{verb} {count} images ({len(doomed)} manifests), kept {len(self.plan.keep)}")
        if self.stopped:
            left = sum(len(d.images) for d in self.not_deleted)
            lines.append(f"{self.stopped}; {left} images of the plan were not deleted")
        return lines


def records_from_builds(
    builds: Iterable[Build], requests: Mapping[str, float] | None = None
) -> dict[str, ImageRecord]:
    """Each image's record from its last successful build (``Store.built_images``:
    newest first, one per image), and its newest request: that build's, or a later one
    of ``requests`` (``Store.last_requests``: cache hits). Pure."""
    requests = requests or {}
    records: dict[str, ImageRecord] = {}
    for build in builds:
        if build.image not in records:
            built_at = build.finished_at or build.created_at
            asked = max(build.created_at, requests.get(build.image, 0.0))
            records[build.image] = ImageRecord(
                build.image, build.repo, build.ref, build.ref_kind, built_at, asked
            )
    return records


def planned_tags(plan: RetentionPlan) -> dict[str, set[str]]:
    """The tags the plan saw in each repository (kept or deleted). Pure."""
    tags: dict[str, set[str]] = {}
    for image in [k.image for k in plan.keep] + [i for d in plan.delete for i in d.images]:
        ref = split_image(image)
        tags.setdefault(ref.repository, set()).add(ref.tag)
    return tags


def repositories_of(records: Mapping[str, ImageRecord], host: str) -> list[str]:
    """The repositories (without host) of the recorded images on ``host``, sorted. Pure."""
    found = set()
    for image in records:
        ref = split_image(image)
        if ref.host == host:
            found.add(ref.repository)
    return sorted(found)


async def registry_images(
    admin: RegistryAdmin, host: str, repositories: Iterable[str]
) -> list[RegistryImage]:
    """Every tag of ``repositories`` with its manifest's digest, tags that are not
    commit SHAs too (the policy keeps them, and their manifests with them: a ``latest``
    naming a commit's manifest keeps it). Raises ``RegistryError``."""
    images = []
    for repository in repositories:
        for tag in await admin.tags(repository):
            digest = await admin.digest(repository, tag)
            if digest is not None:  # a tag deleted between the two questions
                images.append(RegistryImage(f"{host}/{repository}:{tag}", repository, tag, digest))
    return images


@dataclass
class RetentionRun:
    """The parts a run uses: the registry's ``admin`` client (on ``host``, the host
    part of the image names), the service's ``cache`` of "exists" answers (told to
    forget what is deleted), the ``store`` (records in, deletions out), the ``guard``
    and the ``rules``."""

    admin: RegistryAdmin
    host: str
    cache: Registry
    store: Store
    guard: Guard
    rules: RetentionRules
    guard_timeout: float = 30.0
    clock: Callable[[], float] = time.time
    _planned: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False)
    """The tags of each repository when the plan was made (``planned_tags``)."""
    _freed: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False)
    """What deleting each (repository, digest) of the plan frees at most (``measure``)."""

    async def plan(self) -> RetentionPlan:
        """Read the store, the guard and the registry, and plan. Raises
        ``RetentionGuardError`` when the guard fails or does not answer, and what the
        store and the registry raise (``RegistryError``, ``StoreUnavailable``)."""
        builds = await asyncio.to_thread(self.store.built_images, 1_000_000)
        requests = await asyncio.to_thread(self.store.last_requests)
        records = records_from_builds(builds, requests)
        try:
            protected = await asyncio.wait_for(self.guard(), self.guard_timeout)
        except TimeoutError as e:
            raise RetentionGuardError(
                f"what is in use or offered was not read within {self.guard_timeout:g} s"
            ) from e
        except Exception as e:  # the in-use reader's and the store's errors alike
            raise RetentionGuardError(f"what is in use or offered could not be read: {e}") from e
        repositories = repositories_of(records, self.host)
        images = await registry_images(self.admin, self.host, repositories)
        return plan_retention(
            images, records, protected.offered, protected.in_use, self.clock(), self.rules
        )

    async def run(self, *, dry_run: bool) -> RetentionReport:
        """Plan, then (unless ``dry_run``) delete the plan's manifests oldest first, each
        after the guard said it may go, each recorded as soon as it is deleted."""
        run_id = uuid.uuid4().hex
        plan = await self.plan()
        each = await self.measure(plan)
        freed = None if each is None else sum(each)
        self._freed = {} if each is None else dict(zip(self._keys(plan), each, strict=True))
        if dry_run:
            return RetentionReport(run_id, True, plan, freed_bytes=freed)
        deleted: list[Doomed] = []
        spared: list[Doomed] = []
        self._planned = planned_tags(plan)
        for index, doomed in enumerate(plan.delete):
            stopped = await self._delete_one(doomed, run_id, deleted, spared)
            if stopped is not None:
                rest = plan.delete[index:] if doomed not in deleted else plan.delete[index + 1 :]
                return RetentionReport(
                    run_id, False, plan, tuple(deleted), tuple(spared), stopped, tuple(rest), freed
                )
        return RetentionReport(
            run_id, False, plan, tuple(deleted), tuple(spared), freed_bytes=freed
        )

    @staticmethod
    def _keys(plan: RetentionPlan) -> list[tuple[str, str]]:
        return [(d.repository, d.digest) for d in plan.delete]

    async def _newly_tagged(self, doomed: Doomed) -> bool:
        """Whether a tag pushed since the plan names ``doomed``'s manifest (a new build
        whose image is byte for byte an old one's): deleting it would delete that tag."""
        planned = self._planned.get(doomed.repository, set())
        for tag in await self.admin.tags(doomed.repository):
            if tag not in planned and await self.admin.digest(doomed.repository, tag) == (
                doomed.digest
            ):
                return True
        return False

    async def _still_named(self, doomed: Doomed) -> str | None:
        """The first of ``doomed``'s images whose tag still names its manifest after the
        deletion, or None. A registry may answer a deletion it did not carry out (a 404,
        read as "deleted already", is what ECR answered once): recording it would claim
        space freed that is not, run after run."""
        for image in doomed.images:
            if await self.admin.digest(doomed.repository, split_image(image).tag) == (
                doomed.digest
            ):
                return image
        return None

    async def measure(self, plan: RetentionPlan) -> list[int] | None:
        """What each of the plan's deletions frees at most, from each manifest's blobs
        (``freed_per_manifest``); None when the registry cannot say (measuring never
        stops a run)."""
        kept = {(split_image(k.image).repository, k.digest) for k in plan.keep if k.digest}
        try:
            doomed = [await self.admin.blobs(d.repository, d.digest) for d in plan.delete]
            held = [await self.admin.blobs(repository, digest) for repository, digest in kept]
        except RegistryError:
            return None
        return freed_per_manifest(doomed, held)

    async def _delete_one(
        self, doomed: Doomed, run_id: str, deleted: list[Doomed], spared: list[Doomed]
    ) -> str | None:
        """Ask the guard, delete, forget, record; the reason to stop, or None."""
        try:
            protected = await asyncio.wait_for(self.guard(), self.guard_timeout)
        except TimeoutError:
            return f"stopped: the guard did not answer within {self.guard_timeout:g} s"
        except Exception as e:  # whatever it is, nothing more may be deleted
            return f"stopped: the guard could not say what is in use or offered: {e}"
        try:
            if protected.covers(doomed) or await self._newly_tagged(doomed):
                spared.append(doomed)
                return None
            await self.admin.delete_manifest(doomed.repository, doomed.digest)
            left = await self._still_named(doomed)
        except RegistryError as e:
            return f"stopped: deleting {doomed.repository}@{doomed.digest} failed: {e}"
        if left is not None:
            return (
                f"stopped: the registry accepted the deletion of {doomed.repository}@"
                f"{doomed.digest}, but {left} still names it: this registry does not delete "
                "through its API (nothing recorded; see docs/retention.md, Hosted registries)"
            )
        deleted.append(doomed)
        for image in doomed.images:
            self.cache.forget(image)
            self.admin.forget(image)
        now = self.clock()
        freed = self._freed.get((doomed.repository, doomed.digest))
        records = [
            ImageDeletion(image, doomed.repository, doomed.digest, now, run_id, freed)
            for image in doomed.images
        ]
        try:
            await asyncio.to_thread(self.store.record_deletions, records)
        except Exception as e:
            return (
                f"stopped: deleted {doomed.repository}@{doomed.digest} but could not record it: {e}"
            )
        return None
