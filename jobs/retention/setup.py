"""One retention run from settings: ``binderhub-service retention`` (issue 26).

A run that would delete first asks the registry whether it deletes at all, and is
refused with a ``ConfigError`` naming the fix when it does not; a dry run asks
nothing of the kind and deletes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ..catalog import offered_images
from ..factory import make_registry_client
from ..model import Build
from ..registry.admin import RegistryAdmin
from ..registry.client import split_image
from ..settings import ConfigError, Settings
from ..store import Store, open_store
from .policy import RetentionRules
from .run import Guard, Protection, RetentionReport, RetentionRun

InUseReader = Callable[[], Awaitable[frozenset[str]]]


def catalog_of(store: Store) -> dict[str, list[Build]]:
    """Every built image by repository, newest first (``Intake.catalog``'s shape, over
    every image: the offer read from it includes the hub's)."""
    repos: dict[str, list[Build]] = {}
    for build in store.built_images(limit=1_000_000):
        repos.setdefault(build.repo, []).append(build)
    return repos


def make_guard(settings: Settings, store: Store, in_use: InUseReader | None, since: float) -> Guard:
    """The guard of a run that began at ``since``: the catalog's offer, the images
    requested since then and those being built (a build pushing an image must not see
    it deleted before it confirms it), from ``store``, and, unless
    ``retention.in_use`` is ``none``, the images ``in_use`` reads."""
    kinds = settings.hub_profiles.ref_kinds

    async def guard() -> Protection:
        catalog = await asyncio.to_thread(catalog_of, store)
        requested = set(await asyncio.to_thread(store.last_requests, since))
        requested.update(build.image for build in await asyncio.to_thread(store.active))
        used = await in_use() if in_use is not None else frozenset()
        return Protection(
            in_use=used, offered=offered_images(catalog, kinds), requested=frozenset(requested)
        )

    return guard


def in_use_reader(settings: Settings) -> InUseReader | None:
    if settings.retention.in_use == "none":
        return None
    from .pods import PodImages

    return PodImages(settings).read


async def check_deletes(admin: RegistryAdmin, settings: Settings, store: Store) -> None:
    """Refuse (``ConfigError``) a registry that does not delete manifests, asked in a
    repository the service built into (nothing to delete, nothing asked, without one)."""
    images = await asyncio.to_thread(store.built_images, 1)
    if not images:
        return
    repository = split_image(images[0].image).repository
    if not await admin.deletion_enabled(repository):
        raise ConfigError(
            f"registry {settings.registry_url} does not delete manifests (HTTP 405): turn "
            "on its deletion (distribution: storage.delete.enabled), or run with --dry-run"
        )


async def retention_once(
    settings: Settings, *, dry_run: bool, in_use: InUseReader | None = None
) -> RetentionReport:
    """One run with ``settings``; ``in_use`` replaces ``in_use_reader(settings)``.
    Raises ``ConfigError`` (a registry that does not delete), ``RegistryError`` (it
    cannot be read to plan), the store's errors."""
    store = open_store(settings)
    admin = make_registry_client(settings, RegistryAdmin)
    rules = settings.retention
    try:
        if not dry_run:
            await check_deletes(admin, settings, store)
        run = RetentionRun(
            admin=admin,
            host=settings.registry_host,
            cache=admin,
            store=store,
            guard=make_guard(settings, store, in_use or in_use_reader(settings), time.time()),
            rules=RetentionRules(rules.keep_per_ref, rules.keep_days * 86400),
            guard_timeout=rules.guard_timeout,
        )
        return await run.run(dry_run=dry_run)
    finally:
        await admin.aclose()
        store.close()
