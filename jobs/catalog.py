"""The catalog's offer: which built images hub profiles list (issues 7, 14, 26).

One rule, shared by the hub's profiles (``webhook/profiles.py``), retention (which never
deletes what is offered) and pre-pull (which puts what is offered on the user nodes):
the newest built image of each repository's ref whose kind is offered
(``hub_profiles.ref_kinds``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from .model import Build

T = TypeVar("T")


def newest_per_ref(
    items: Iterable[T],
    ref_kinds: Iterable[str],
    kind_of: Callable[[T], str],
    ref_of: Callable[[T], str],
) -> list[T]:
    """The offer's rule over one repository's images, given newest first: the first
    (newest) of each ref whose kind is in ``ref_kinds``, in the given order. ``kind_of``
    and ``ref_of`` read an item (a ``Build``, or an image of the catalog's JSON). Pure."""
    kinds = set(ref_kinds)
    seen: set[str] = set()
    newest = []
    for item in items:
        if kind_of(item) in kinds and ref_of(item) not in seen:
            seen.add(ref_of(item))
            newest.append(item)
    return newest


def offered_builds(catalog: Mapping[str, Sequence[Build]], ref_kinds: Iterable[str]) -> list[Build]:
    """The build of each repository's ref (of ``ref_kinds``) that the catalog offers:
    its newest. ``catalog``: ``BuildService.catalog()``, each repository's built
    images newest first. In the catalog's order. Pure."""
    kinds = list(ref_kinds)
    return [
        build
        for builds in catalog.values()
        for build in newest_per_ref(builds, kinds, _kind_of_build, _ref_of_build)
    ]


def _kind_of_build(build: Build) -> str:
    return build.ref_kind


def _ref_of_build(build: Build) -> str:
    return build.ref


def offered_images(
    catalog: Mapping[str, Sequence[Build]], ref_kinds: Iterable[str]
) -> frozenset[str]:
    """The image names of ``offered_builds``. Pure."""
    return frozenset(build.image for build in offered_builds(catalog, ref_kinds))
