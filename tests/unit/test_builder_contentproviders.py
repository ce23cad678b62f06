"""builder/'s content providers for HydroShare and CKAN (issue 25): what they accept to
fetch, and the safe unpacking of a HydroShare bag. Their fetches, with the check of the
modification time before and after, run against the stand-ins in
tests/integration/test_record_builds.py."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest

with warnings.catch_warnings():  # repo2docker's imports warn of their own
    warnings.simplefilter("ignore", DeprecationWarning)
    from binderhub_service_builder.contentproviders.unversioned import (
        CKAN,
        ContentChanged,
        HydroShare,
        check_modified,
        ckan_spec,
        hydroshare_spec,
        safe_name,
        unpack,
    )

HS_ID = "b8f6eae9d89241cf8b5904033460af61"
ACTIVITY = "2b9f4c1e-8d7a-4f3b-a6e5-1c0d9b8a7f6e"


def test_hydroshare_takes_a_resource_with_its_modification_time_only() -> None:
    url = f"https://www.hydroshare.org/resource/{HS_ID}?modified=1567712116.491540"
    assert hydroshare_spec(url) == {
        "host": "www.hydroshare.org",
        "resource": HS_ID,
        "version": "1567712116.491540",
    }
    provider = HydroShare()
    assert provider.detect(url) is not None
    assert provider.content_id == f"{HS_ID}.v1567712116.491540"
    for other in (
        f"https://www.hydroshare.org/resource/{HS_ID}",  # no version: never fetched
        f"http://www.hydroshare.org/resource/{HS_ID}?modified=1",
        f"https://www.hydroshare.org/resource/{HS_ID}?modified=latest",
        f"https://www.hydroshare.org/resource/{HS_ID}?modified=1&modified=2",
        "https://zenodo.org/records/1",
    ):
        assert hydroshare_spec(other) is None, other


def test_ckan_takes_a_dataset_pinned_by_activity_or_modification_time() -> None:
    base = "https://data.example.org/catalog/dataset/c3c9a1e2-6a4f-4b8e-9d61-2f0b5a7e1d44"
    spec = ckan_spec(f"{base}?activity_id={ACTIVITY}&modified=1705313854.519163")
    assert spec == {
        "api": "https://data.example.org/catalog/api/3/action",
        "dataset": "c3c9a1e2-6a4f-4b8e-9d61-2f0b5a7e1d44",
        "activity": ACTIVITY,
        "version": "1705313854.519163",
    }
    assert ckan_spec(f"{base}?modified=1")["activity"] == ""  # type: ignore[index]
    assert ckan_spec(f"{base}?activity_id={ACTIVITY}")["version"] == ""  # type: ignore[index]
    assert CKAN().detect(f"{base}?modified=1") is not None
    for other in (
        base,
        f"{base}?activity_id=nope",
        f"{base}?modified=x",
        "https://x.org/group/a?modified=1",
    ):
        assert ckan_spec(other) is None, other


def test_a_moved_modification_time_is_a_failure_naming_both() -> None:
    check_modified("HydroShare resource x", "1", "1", "before the download")
    with pytest.raises(
        ContentChanged, match=r"modified during the download \(modified 2, the image"
    ):
        check_modified("HydroShare resource x", "1", "2", "during the download")


def test_a_bag_is_unpacked_from_its_contents_and_never_outside(tmp_path: Path) -> None:
    bag = tmp_path / "bag.zip"
    with zipfile.ZipFile(bag, "w") as archive:
        archive.writestr(f"{HS_ID}/bagit.txt", "BagIt-Version: 0.96\n")
        archive.writestr(f"{HS_ID}/data/contents/Dockerfile", "FROM x\n")
        archive.writestr(f"{HS_ID}/data/contents/sub/a.txt", "a\n")
    out = tmp_path / "out"
    out.mkdir()
    assert list(unpack(bag, f"{HS_ID}/data/contents/", out)) == [
        "Fetched Dockerfile\n",
        "Fetched sub/a.txt\n",
    ]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "Dockerfile",
        "sub/a.txt",
    ]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr(f"{HS_ID}/data/contents/../../../escaped", "x")
    with pytest.raises(ValueError, match="outside the content"):
        list(unpack(evil, f"{HS_ID}/data/contents/", out))
    assert not (tmp_path / "escaped").exists()


def test_download_names_are_file_names_only() -> None:
    assert safe_name("/dataset/x/resource/y/download/environment.yml") == "environment.yml"
    for bad in ("/", "/a/..", ""):
        with pytest.raises(ValueError, match="no file name"):
            safe_name(bad)
