"""Image names of record versions (jobs/naming.py, issue 25): pinned by golden values;
one repository per record, one tag per version, every name valid."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from jobs.errors import InvalidRequest
from jobs.naming import MAX_IMAGE_NAME_LENGTH, image_name_for_record, version_tag
from jobs.sources.records import RecordVersion

PREFIX = "registry.example.org/binder-"
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SWHID = "swh:1:dir:" + "a" * 40

ZENODO = RecordVersion(
    "zenodo", "zenodo.org", "3242074", "3242081", "https://zenodo.org/records/3242081", 1, True
)
FIGSHARE = RecordVersion("figshare", "figshare.com", "9782777", "3", "", 1, True)
DATAVERSE = RecordVersion(
    "dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP", "3.0", "", 1, True
)
SWH = RecordVersion("swh", "archive.softwareheritage.org", SWHID, SWHID, SWHID, None, False)


@pytest.mark.parametrize(
    ("version", "image"),
    [
        (ZENODO, "zenodo-zenodo-org-3242074-4ad0da3a:3242081"),
        (FIGSHARE, "figshare-figshare-com-9782777-128c8b85:v3"),
        (DATAVERSE, "dataverse-dataverse-harvard-edu-doi-10-7910-dvn-tjclkp-fac6768d:v3.0"),
        (
            SWH,
            "swh-archive-softwareheritage-org-swh-1-dir-" + "a" * 40 + "-72186628:dir-" + "a" * 40,
        ),
    ],
)
def test_golden_record_image_names(version: RecordVersion, image: str) -> None:
    assert image_name_for_record(PREFIX, version) == PREFIX + image


def test_versions_of_a_record_share_a_repository_and_differ_in_tag() -> None:
    older = replace(ZENODO, version="3242075", moves=False)
    new_name, new_tag = image_name_for_record(PREFIX, ZENODO).split(":")
    old_name, old_tag = image_name_for_record(PREFIX, older).split(":")
    assert new_name == old_name
    assert new_tag != old_tag
    # the content repo2docker is handed is no part of the name: the version is
    assert image_name_for_record(PREFIX, replace(ZENODO, content="other")) == (
        image_name_for_record(PREFIX, ZENODO)
    )


def test_records_differing_only_in_case_or_host_get_different_repositories() -> None:
    lower = replace(DATAVERSE, record="doi:10.7910/dvn/tjclkp")
    other_host = replace(DATAVERSE, host="dataverse.example.edu")
    names = {image_name_for_record(PREFIX, v).split(":")[0] for v in (DATAVERSE, lower, other_host)}
    assert len(names) == 3


@pytest.mark.parametrize(
    ("provider", "version", "tag"),
    [
        ("zenodo", "3242081", "3242081"),
        ("figshare", "12", "v12"),
        ("dataverse", "1.0", "v1.0"),
        ("hydroshare", "1700000000", "1700000000"),
        ("ckan", "2026-01-01T00:00:00+00:00", "2026-01-01t00-00-00-00-00-2db0bb0b6065"),
        ("ckan", "+++", "29f5099b939a"),
        ("ckan", "x" * 200, "x" * 115 + "-" + "aa20c23e3201"),
    ],
)
def test_version_tags(provider: str, version: str, tag: str) -> None:
    assert version_tag(provider, version) == tag
    assert TAG.match(tag)


def test_long_records_and_prefixes_stay_within_the_registry_limit() -> None:
    long = replace(DATAVERSE, record="doi:10.7910/" + "X" * 1000)
    assert len(image_name_for_record(PREFIX, long)) <= MAX_IMAGE_NAME_LENGTH
    with pytest.raises(InvalidRequest, match="image_prefix is too long"):
        image_name_for_record("r/" + "p" * 250, ZENODO)
