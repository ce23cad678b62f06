"""The catalog's offer: which built images hub profiles list (issues 7, 14, 26).

One rule, shared by the hub's profiles (``webhook/profiles.py``), retention (which never
deletes what is offered) and pre-pull (which puts what is offered on the user nodes):
the newest built image of each repository's ref whose kind is offered
(``hub_profiles.ref_kinds``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .model import Build


def offered_builds(catalog: Mapping[str, Sequence[Build]], ref_kinds: Iterable[str]) -> list[Build]:
    """The build of each repository's ref (of ``ref_kinds``) that the catalog offers:
    its newest. ``catalog``: ``BuildService.catalog()``, each repository's built
    images newest first. In the catalog's order. Pure."""
    kinds = set(ref_kinds)
    offered = []
    for builds in catalog.values():
        seen: set[str] = set()
        for build in builds:  # newest first
            if build.ref_kind in kinds and build.ref not in seen:
                seen.add(build.ref)
                offered.append(build)
    return offered


def offered_images(
    catalog: Mapping[str, Sequence[Build]], ref_kinds: Iterable[str]
) -> frozenset[str]:
    """The image names of ``offered_builds``. Pure."""
    return frozenset(build.image for build in offered_builds(catalog, ref_kinds))
