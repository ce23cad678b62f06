"""A retention run (``jobs.retention.run``) against a real registry with deletion on,
on images the service built with repo2docker and recorded in its store: superseded
images deleted, kept ones intact, the in-use one kept, a dry run deletes nothing, a
guard that fails stops the run, and a later request for a deleted image builds it
again (issue 26).

The guard here answers from the test (the in-use reader of the Kubernetes API is not
written yet); everything else is the service's own: its store, its registry cache,
its catalog's offer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.catalog import offered_images
from jobs.model import Build, BuildState
from jobs.registry.admin import RegistryAdmin
from jobs.registry.client import split_image
from jobs.retention.policy import RetentionRules
from jobs.retention.run import Protection, RetentionRun
from jobs.service import BuildService
from jobs.settings import Settings
from jobs.store import SqliteStore
from testkit.components import GitServer, Registry, dockerfile

from .test_pipeline import wait_finished
from .tiny_images import distinct_image, push_as

pytestmark = pytest.mark.anyio

StartService = Callable[[Settings], Any]
DAY = 86400.0
KINDS = ("branch", "tag", "head")


async def build_commits(service: BuildService, url: str, shas: list[str]) -> list[str]:
    """Build each commit (by SHA, as a branch's pushes would, one after another) and
    date each build a day older than the next, the first 100 days ago. Images, in
    order."""
    images = []
    for age, sha in zip(range(100, 100 - len(shas), -1), shas, strict=True):
        outcome = await service.request(url, sha)
        assert outcome.build is not None
        await wait_finished(service, outcome.build.id)
        build = service.get(outcome.build.id)
        assert build.state is BuildState.BUILT, build.error
        # built long ago, and recorded as the branch's (a push names the branch)
        when = time.time() - age * DAY
        service.store.update(
            build.id, ref="refs/heads/main", ref_kind="branch", created_at=when, finished_at=when
        )
        images.append(build.image)
    return images


def retention(
    service: BuildService, registry: Registry, guard: Callable[[], Any]
) -> tuple[RetentionRun, RegistryAdmin]:
    admin = RegistryAdmin(registry.url)
    run = RetentionRun(
        admin=admin,
        host=registry.host,
        cache=service.registry,
        store=service.store,
        guard=guard,
        rules=RetentionRules(keep_per_ref=1, keep_seconds=30 * DAY),
    )
    return run, admin


async def test_retention_deletes_the_superseded_and_keeps_the_rest(
    git_server: GitServer,
    registry: Registry,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"kept-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})
    shas = [repo.commit({"n": str(i)}, f"commit {i}") for i in range(5)]
    service = await start_service(make_settings())
    images = await build_commits(service, repo.url, shas)
    in_use = images[1]  # an old image a user server still runs
    # an old image someone asks for again today: a cache hit, noted for retention
    assert (await service.request(repo.url, shas[3])).status == "cached"

    async def guard() -> Protection:
        offered = offered_images(service.catalog(), KINDS)
        return Protection(in_use=frozenset({in_use}), offered=offered)

    run, admin = retention(service, registry, guard)
    try:
        dry = await run.run(dry_run=True)
        doomed = [image for d in dry.plan.delete for image in d.images]
        assert doomed == [images[0], images[2]]  # oldest first
        kept = {k.image: k.reasons for k in dry.plan.keep}
        assert kept == {
            in_use: ("in-use",),
            images[3]: ("recent",),
            images[4]: ("offered", "newest"),
        }
        # what it frees: the two images' own blobs, not the base layer the kept share
        whole = 0
        for d in dry.plan.delete:
            whole += sum((await admin.blobs(d.repository, d.digest)).values())
        assert dry.freed_bytes is not None
        assert 0 < dry.freed_bytes < whole
        for image in images:  # the dry run deleted nothing
            assert await admin.has_image(image, use_cache=False)
        assert service.store.deletions() == []

        report = await run.run(dry_run=False)
        assert report.stopped is None
        assert [i for d in report.deleted for i in d.images] == [images[0], images[2]]
        for image in (images[0], images[2]):
            assert not await service.registry.has_image(image)  # the cache forgot it
        for image in images[1:2] + images[3:]:
            assert await admin.has_image(image, use_cache=False)
        recorded = service.store.deletions()
        assert sorted(d.image for d in recorded) == sorted([images[0], images[2]])
        assert {d.run_id for d in recorded} == {report.run_id}
        assert {d.digest for d in recorded} == {d.digest for d in report.deleted}
        # each deletion records what it freed; together, what the run frees
        assert all(d.freed_bytes is not None and d.freed_bytes > 0 for d in recorded)
        assert sum(d.freed_bytes or 0 for d in recorded) == report.freed_bytes
        assert service.store.deletion_totals().freed_bytes == report.freed_bytes

        # a later request for a deleted image builds it again
        again = await service.request(repo.url, shas[2])
        assert again.status == "created"
        assert again.build is not None
        await wait_finished(service, again.build.id)
        assert service.get(again.build.id).state is BuildState.BUILT
        assert await admin.has_image(images[2], use_cache=False)
    finally:
        await admin.aclose()


async def test_a_guard_that_fails_mid_run_stops_it(
    git_server: GitServer,
    registry: Registry,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"stop-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})
    shas = [repo.commit({"n": str(i)}, f"commit {i}") for i in range(4)]
    service = await start_service(make_settings())
    images = await build_commits(service, repo.url, shas)
    calls = 0

    async def guard() -> Protection:
        """Answers for the plan and the first deletion, then the cluster goes away."""
        nonlocal calls
        calls += 1
        if calls > 2:
            raise ConnectionError("the Kubernetes API server did not answer")
        return Protection(offered=offered_images(service.catalog(), KINDS))

    run, admin = retention(service, registry, guard)
    try:
        report = await run.run(dry_run=False)
        assert report.stopped is not None
        assert "could not say what is in use" in report.stopped
        assert "did not answer" in report.stopped
        assert [i for d in report.deleted for i in d.images] == [images[0]]
        assert [i for d in report.not_deleted for i in d.images] == images[1:3]
        assert not await admin.has_image(images[0], use_cache=False)
        for image in images[1:]:
            assert await admin.has_image(image, use_cache=False)
        assert [d.image for d in service.store.deletions()] == [images[0]]
        assert split_image(images[0]).host == registry.host
    finally:
        await admin.aclose()


def recorded_images(
    registry: Registry, tmp_path: Path, unique: str
) -> tuple[SqliteStore, list[str]]:
    """Three commits of one branch, pushed and recorded 100, 99 and 98 days ago (tiny
    images of their own, no repo2docker): the store and the images, oldest first."""
    store = SqliteStore(str(tmp_path / f"state-{unique}.sqlite"))
    images = []
    for n, age in enumerate((100, 99, 98)):
        sha = f"{n:040x}"
        image = push_as(registry, distinct_image(f"guard-{unique}-{n}"), f"t{unique}-g:{sha}")
        when = time.time() - age * DAY
        store.create(
            Build(
                id=f"{unique}{n:024x}",
                repo=f"https://example.org/{unique}/g",
                ref="refs/heads/main",
                ref_kind="branch",
                sha=sha,
                image=image,
                name=f"r2d-{n}",
                state=BuildState.BUILT,
                trigger="webhook:github",
                created_at=when,
                finished_at=when,
            )
        )
        images.append(image)
    return store, images


def bare_run(
    registry: Registry,
    store: SqliteStore,
    guard: Callable[[], Any],
    timeout: float = 30.0,
    admin: RegistryAdmin | None = None,
) -> tuple[RetentionRun, RegistryAdmin]:
    admin = admin or RegistryAdmin(registry.url)
    run = RetentionRun(
        admin=admin,
        host=registry.host,
        cache=admin,
        store=store,
        guard=guard,
        rules=RetentionRules(keep_per_ref=1, keep_seconds=30 * DAY),
        guard_timeout=timeout,
    )
    return run, admin


async def test_a_guard_that_does_not_answer_stops_the_run(
    registry: Registry, tmp_path: Path, unique: str
) -> None:
    store, images = recorded_images(registry, tmp_path, unique)
    calls = 0

    async def guard() -> Protection:
        """Answers the plan, then hangs, as an API server that accepts and never answers."""
        nonlocal calls
        calls += 1
        if calls > 1:
            await asyncio.Event().wait()
        return Protection()

    run, admin = bare_run(registry, store, guard, timeout=0.5)
    try:
        report = await run.run(dry_run=False)
        assert report.stopped == "stopped: the guard did not answer within 0.5 s"
        assert report.deleted == ()
        assert [i for d in report.not_deleted for i in d.images] == images[:2]
        for image in images:
            assert await admin.has_image(image, use_cache=False)
        assert store.deletions() == []
    finally:
        await admin.aclose()
        store.close()


async def test_an_image_that_comes_into_use_during_the_run_is_spared(
    registry: Registry, tmp_path: Path, unique: str
) -> None:
    store, images = recorded_images(registry, tmp_path, unique)
    calls = 0

    async def guard() -> Protection:
        """Nothing in use when the plan is made; then a user server starts the oldest."""
        nonlocal calls
        calls += 1
        return Protection(in_use=frozenset({images[0]} if calls > 1 else ()))

    run, admin = bare_run(registry, store, guard)
    try:
        report = await run.run(dry_run=False)
        assert report.stopped is None
        assert [i for d in report.spared for i in d.images] == [images[0]]
        assert [i for d in report.deleted for i in d.images] == [images[1]]
        assert await admin.has_image(images[0], use_cache=False)
        assert not await admin.has_image(images[1], use_cache=False)
        assert [d.image for d in store.deletions()] == [images[1]]
    finally:
        await admin.aclose()
        store.close()


async def test_a_tag_pushed_after_the_plan_keeps_its_manifest(
    registry: Registry, tmp_path: Path, unique: str
) -> None:
    """A new build whose image is byte for byte an old one's names the old manifest:
    deleting that manifest by digest would delete the new tag too."""
    store, images = recorded_images(registry, tmp_path, unique)
    calls = 0
    newer = f"t{unique}-g:{9:040x}"

    async def guard() -> Protection:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the plan, before the first deletion
            push_as(registry, distinct_image(f"guard-{unique}-0"), newer)
        return Protection()

    run, admin = bare_run(registry, store, guard)
    try:
        report = await run.run(dry_run=False)
        assert report.stopped is None
        assert [i for d in report.spared for i in d.images] == [images[0]]
        assert [i for d in report.deleted for i in d.images] == [images[1]]
        assert await admin.has_image(f"{registry.host}/{newer}", use_cache=False)
        assert await admin.has_image(images[0], use_cache=False)
    finally:
        await admin.aclose()
        store.close()


class AnswersWithoutDeleting(RegistryAdmin):
    """The real registry, except that its deletions are answered 404 ("deleted
    already") and not carried out, as a hosted registry without API deletion did (ECR
    in 2021, docs/retention.md): what a run must not take for a deletion."""

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        return False


async def test_a_deletion_the_registry_does_not_carry_out_stops_the_run_unrecorded(
    registry: Registry, tmp_path: Path, unique: str
) -> None:
    store, images = recorded_images(registry, tmp_path, unique)

    async def guard() -> Protection:
        return Protection()

    pretender = AnswersWithoutDeleting(registry.url)
    run, _ = bare_run(registry, store, guard, admin=pretender)
    admin = RegistryAdmin(registry.url)
    try:
        report = await run.run(dry_run=False)
        assert report.stopped is not None
        assert f"{images[0]} still names it" in report.stopped
        assert "does not delete" in report.stopped
        assert report.deleted == ()
        assert store.deletions() == []
        for image in images:
            assert await admin.has_image(image, use_cache=False)
    finally:
        await admin.aclose()
        await pretender.aclose()
        store.close()
