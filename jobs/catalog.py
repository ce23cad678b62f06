"""The catalog's offer: which built images hub profiles list (issues 7, 14, 26).

One rule, shared by the hub's profiles (``webhook/profiles.py``), retention (which never
deletes what is offered) and pre-pull (which puts what is offered on the user nodes):
the newest built image of each repository's ref whose kind is offered
(``hub_profiles.ref_kinds``); for a record of a content provider (kind ``record``, issue
25: the repository is the record's page), the image of its newest version built
(``version_order``), whichever was built last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from .model import Build

T = TypeVar("T")
RECORD_KIND = "record"


def version_order(version: str) -> tuple[int, ...]:
    """How a record's versions sort, newest last: a Zenodo version's record id, a
    Figshare version number, a Dataverse ``major.minor``, a HydroShare or CKAN
    modification time (``<seconds>[.<micro>]``, CKAN's followed by ``-<activity id>``):
    their numbers; a version of another form sorts first (``()``). Pure."""
    if len(version) == 36 and version.count("-") == 4:  # a CKAN activity asked for
        return ()
    parts = version.split("-", 1)[0].split(".")
    if not all(part.isdigit() for part in parts):
        return ()
    return tuple(int(part) for part in parts)


def newest_per_ref(
    items: Iterable[T],
    ref_kinds: Iterable[str],
    kind_of: Callable[[T], str],
    ref_of: Callable[[T], str],
    version_of: Callable[[T], str],
) -> list[T]:
    """The offer's rule over one repository's images, given newest first: the first
    (newest) of each ref whose kind is in ``ref_kinds``, in the given order; of a
    record's images (kind ``record``, with ``record`` in ``ref_kinds``) the one of the
    newest version (``version_order``; the newest built among equals), whatever was
    asked for. ``kind_of``, ``ref_of`` and ``version_of`` read an item (a ``Build``, or
    an image of the catalog's JSON). Pure."""
    kinds = set(ref_kinds)
    seen: set[str] = set()
    newest: list[T] = []
    record: T | None = None
    for item in items:
        kind = kind_of(item)
        if kind not in kinds:
            continue
        if kind == RECORD_KIND:
            if record is None or version_order(version_of(item)) > version_order(
                version_of(record)
            ):
                record = item
        elif ref_of(item) not in seen:
            seen.add(ref_of(item))
            newest.append(item)
    return newest if record is None else [record, *newest]


def offered_builds(catalog: Mapping[str, Sequence[Build]], ref_kinds: Iterable[str]) -> list[Build]:
    """The build of each repository's ref (of ``ref_kinds``) that the catalog offers:
    its newest. ``catalog``: ``BuildService.catalog()``, each repository's built
    images newest first. In the catalog's order. Pure."""
    kinds = list(ref_kinds)
    return [
        build
        for builds in catalog.values()
        for build in newest_per_ref(builds, kinds, _kind_of_build, _ref_of_build, _sha_of_build)
    ]


def _kind_of_build(build: Build) -> str:
    return build.ref_kind


def _ref_of_build(build: Build) -> str:
    return build.ref


def _sha_of_build(build: Build) -> str:
    return build.sha


def offered_images(
    catalog: Mapping[str, Sequence[Build]], ref_kinds: Iterable[str]
) -> frozenset[str]:
    """The image names of ``offered_builds``. Pure."""
    return frozenset(build.image for build in offered_builds(catalog, ref_kinds))
