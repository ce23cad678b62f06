"""The catalog's offer (``jobs.catalog``): what retention keeps and pre-pull pulls is
exactly what the hub's profiles list (``webhook.profiles``), for every choice of kinds."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.catalog import offered_images
from jobs.model import Build, BuildState
from webhook.profiles import profiles_from_catalog

from .test_hub_profiles import CATALOG, hub


def builds_of(catalog: dict[str, Any]) -> dict[str, list[Build]]:
    """``BuildService.catalog()`` that ``catalog_json`` turns into ``catalog``."""
    return {
        entry["repo"]: [
            Build(
                id=i["build_id"],
                repo=entry["repo"],
                ref=i["ref"],
                ref_kind=i["ref_kind"],
                sha=i["sha"],
                image=i["image"],
                name="n",
                state=BuildState.BUILT,
                trigger="api",
                created_at=i["built_at"],
                finished_at=i["built_at"],
            )
            for i in entry["images"]
        ]
        for entry in catalog["repos"]
    }


@pytest.mark.parametrize(
    "kinds", [["branch", "tag", "head"], ["tag", "commit"], ["head"], ["branch"], []]
)
def test_the_offer_is_what_the_profiles_list(kinds: list[str]) -> None:
    profiles = profiles_from_catalog(CATALOG, hub(ref_kinds=kinds))
    listed = {
        choice["kubespawner_override"]["image"]
        for profile in profiles
        for choice in profile["profile_options"]["image"]["choices"].values()
    }
    assert offered_images(builds_of(CATALOG), kinds) == listed


def test_the_offer_is_the_newest_of_each_ref() -> None:
    offered = offered_images(builds_of(CATALOG), ["branch", "tag", "head"])
    assert sorted(image.rsplit(":", 1)[1][0] for image in offered) == ["b", "c", "e"]
