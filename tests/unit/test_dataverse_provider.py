"""builder/'s Dataverse content provider (binderhub_service_builder.contentproviders): the
URLs it takes, and the files it fetches of a version, from the recorded shapes of
Dataverse's native API (tests/data/providers/). Its fetch runs against the stand-in in
tests/integration/test_dataverse_builds.py."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from jobs.sources.record_versions import check_size, dataverse_version
from jobs.sources.records import RecordSource, dataverse_content
from tests.conftest import ROOT

with warnings.catch_warnings():  # repo2docker's imports warn of their own
    warnings.simplefilter("ignore", DeprecationWarning)
    from binderhub_service_builder.contentproviders.dataverse import (
        Dataverse,
        dataverse_spec,
        safe_path,
        version_files,
    )
    from repo2docker.contentproviders.base import ContentProviderException

DATA = ROOT / "tests" / "data" / "providers"
SPEC = {"host": "dataverse.harvard.edu", "pid": "doi:10.7910/DVN/TJCLKP", "version": "2.1"}


def recorded(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text())


def test_the_content_the_service_hands_over_is_taken() -> None:
    for pid in ("doi:10.7910/DVN/TJCLKP", "hdl:1902.1/12345", "doi:10.1/a&b=c#d"):
        url = dataverse_content("dataverse.harvard.edu", pid, "2.1")
        assert dataverse_spec(url) == {**SPEC, "pid": pid}
        assert Dataverse().detect(url) == {**SPEC, "pid": pid}


@pytest.mark.parametrize(
    "url",
    [
        # no version: ours never fetches "the latest"
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP",
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.1/x&version=DRAFT",
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.1/x&version=:latest",
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=&version=1.0",
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=a&persistentId=b&version=1.0",
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.1/x&version=1.0&x=1",
        "http://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.1/x&version=1.0",
        "https://user@dv.test/dataset.xhtml?persistentId=doi:10.1/x&version=1.0",
        "https://dv.test/citation?persistentId=doi:10.1/x&version=1.0",
        "https://dv.test/dataset.xhtml?persistentId=doi:10.1/x&version=1.0#frag",
        "https://zenodo.org/records/3242081",
        "/srv/checkout",
    ],
)
def test_other_urls_are_not_taken(url: str) -> None:
    assert dataverse_spec(url) is None
    assert Dataverse().detect(url) is None


def test_a_ref_is_never_taken() -> None:
    url = dataverse_content("dv.test", "doi:10.1/x", "1.0")
    assert Dataverse().detect(url, ref="main") is None


def test_the_files_of_a_version() -> None:
    files = version_files(SPEC, recorded("dataverse_version_tabular"))
    assert files == [
        {
            "id": 3323461,
            "path": "binder/requirements.txt",
            "original": False,
            "size": 14,
            "checksum": ("md5", "f3f2d2b3b3b3a1b5c9d8e7f6a5b4c3d2"),
        },
        {  # an ingested table: the file as uploaded, under its own name
            "id": 3323462,
            "path": "data/survey.csv",
            "original": True,
            "size": 39811,  # what format=original serves: the upload (originalFileSize)
            "checksum": None,  # not said whether of the upload or of the stored table
        },
    ]  # the restricted file is left out: no anonymous download serves it


def test_the_recorded_version_1_0() -> None:
    files = version_files({**SPEC, "version": "1.0"}, recorded("dataverse_version"))
    assert [(f["id"], f["path"]) for f in files] == [
        (3323458, "environment.yml"),
        (3323459, "index.ipynb"),
    ]


def test_another_version_than_the_one_handed_over_is_refused() -> None:
    with pytest.raises(ContentProviderException, match=r"version 1\.0 .* not version 2\.1"):
        version_files(SPEC, recorded("dataverse_version"))


def test_a_version_that_is_not_released_is_refused() -> None:
    answer = recorded("dataverse_version_tabular")
    answer["data"]["versionState"] = "DRAFT"
    with pytest.raises(ContentProviderException, match="is DRAFT, not released"):
        version_files(SPEC, answer)


@pytest.mark.parametrize(
    "answer", [recorded("dataverse_not_found"), {"status": "OK"}, [], None, "x"]
)
def test_an_answer_without_a_version_is_refused(answer: Any) -> None:
    with pytest.raises(ContentProviderException, match="answered no dataset version"):
        version_files(SPEC, answer)


@pytest.mark.parametrize(
    ("directory", "name", "path"),
    [("", "a.txt", "a.txt"), ("data/raw", "a.csv", "data/raw/a.csv"), ("./x/", "b", "x/b")],
)
def test_paths_inside_the_dataset(directory: str, name: str, path: str) -> None:
    assert safe_path(directory, name) == path


@pytest.mark.parametrize(
    ("directory", "name"),
    [("..", "a"), ("x/../..", "a"), ("", ".."), ("", ""), ("a\\..\\..", "b"), ("", "a\x00b")],
)
def test_paths_out_of_the_dataset_are_refused(directory: str, name: str) -> None:
    with pytest.raises(ContentProviderException, match="refusing the file path"):
        safe_path(directory, name)


def test_a_file_path_out_of_the_dataset_fails_the_version() -> None:
    answer = recorded("dataverse_version_tabular")
    answer["data"]["files"][0]["directoryLabel"] = "../../etc"
    with pytest.raises(ContentProviderException, match="refusing the file path"):
        version_files(SPEC, answer)


@pytest.mark.parametrize(
    ("answer", "version", "fetched"),
    [
        ("dataverse_version", "1.0", 98 + 3900),
        # the restricted file (2048 bytes) is not fetched; the table is, as uploaded
        ("dataverse_version_tabular", "2.1", 14 + 39811),
    ],
)
def test_the_size_the_service_limits_is_what_the_provider_fetches(
    answer: str, version: str, fetched: int
) -> None:
    """``providers.max_record_bytes`` holds the service to the bytes a build downloads:
    the service's total (``dataverse_version``) is the sum of the files builder/'s
    provider fetches (``version_files``), restricted files left out of both."""
    source = RecordSource("dataverse", SPEC["host"], SPEC["pid"], version)
    counted = dataverse_version(source, (200, recorded(answer))).total_size
    files = version_files({**SPEC, "version": version}, recorded(answer))
    assert counted == sum(f["size"] for f in files) == fetched


def test_a_dataset_whose_restricted_files_alone_exceed_the_limit_is_not_refused() -> None:
    """Restricted files are not in the image, so they do not count against the limit."""
    answer = recorded("dataverse_version_tabular")
    restricted = answer["data"]["files"][2]
    assert restricted["restricted"] is True
    restricted["dataFile"]["filesize"] = 50 * 1024**4  # 50 TiB nobody can download
    source = RecordSource("dataverse", SPEC["host"], SPEC["pid"], "2.1")
    version = dataverse_version(source, (200, answer))
    assert version.total_size == 14 + 39811
    check_size(source, version.total_size, 10 * 1024**3)
