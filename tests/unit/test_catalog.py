"""The catalog's offer (``jobs.catalog``): what retention keeps and pre-pull pulls is
exactly what the hub's profiles list (``webhook.profiles``), for every choice of kinds."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.catalog import offered_images, version_order
from jobs.model import Build, BuildState
from webhook.profiles import profiles_from_catalog

from .test_hub_profiles import CATALOG, PREFIX, hub, image


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


RECORD = "https://zenodo.org/records/3242074"
RECORD_CATALOG: dict[str, Any] = {
    "repos": [
        {
            "repo": RECORD,
            "images": [  # newest first: an older version asked for by its own record last
                image("zenodo-zenodo-org-3242074-1a2b3c4d", "3242075", "3242075", "record", 9.0),
                image("zenodo-zenodo-org-3242074-1a2b3c4d", "3242090", "latest", "record", 8.0),
                image("zenodo-zenodo-org-3242074-1a2b3c4d", "3242081", "latest", "record", 7.0),
            ],
        },
        *CATALOG["repos"],
    ]
}


def test_a_record_offers_its_newest_version_whichever_was_built_last() -> None:
    kinds = ["branch", "tag", "head", "record"]
    offered = offered_images(builds_of(RECORD_CATALOG), kinds)
    records = {name for name in offered if "zenodo" in name}
    assert records == {f"{PREFIX}zenodo-zenodo-org-3242074-1a2b3c4d:3242090"}
    (profile,) = profiles_from_catalog(RECORD_CATALOG, hub(ref_kinds=kinds))
    names = [c["display_name"] for c in profile["profile_options"]["image"]["choices"].values()]
    assert "zenodo.org/records/3242074 (version 3242090)" in names
    # the default offers records; without the kind, none
    assert hub().hub_profiles.ref_kinds == kinds
    assert not {n for n in offered_images(builds_of(RECORD_CATALOG), kinds[:3]) if "zenodo" in n}


@pytest.mark.parametrize("kinds", [["branch", "tag", "head", "record"], ["record"], []])
def test_the_offer_of_records_is_what_the_profiles_list(kinds: list[str]) -> None:
    profiles = profiles_from_catalog(RECORD_CATALOG, hub(ref_kinds=kinds))
    listed = {
        choice["kubespawner_override"]["image"]
        for profile in profiles
        for choice in profile["profile_options"]["image"]["choices"].values()
    }
    assert offered_images(builds_of(RECORD_CATALOG), kinds) == listed


@pytest.mark.parametrize(
    ("version", "order"),
    [
        ("3242081", (3242081,)),
        ("1.0", (1, 0)),
        ("2", (2,)),
        ("dir-abc", ()),
        ("", ()),
        ("1700000000.123456", (1700000000, 123456)),
        ("1700000500", (1700000500,)),
        ("1705313854.519163-2b9f4c1e-8d7a-4f3b-a6e5-1c0d9b8a7f6e", (1705313854, 519163)),
        ("2b9f4c1e-8d7a-4f3b-a6e5-1c0d9b8a7f6e", ()),  # an activity asked for
        ("12345678-8d7a-4f3b-a6e5-1c0d9b8a7f6e", ()),
    ],
)
def test_version_order(version: str, order: tuple[int, ...]) -> None:
    assert version_order(version) == order
