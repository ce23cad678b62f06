"""Provider API answers read into record versions (jobs/sources/record_versions.py):
golden tests over the recorded shapes in tests/data/providers/, and every answer that
means an error."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from jobs import errors
from jobs.sources.record_versions import (
    check_size,
    dataverse_version,
    doi_target,
    figshare_version,
    zenodo_version,
)
from jobs.sources.records import RecordSource, RecordVersion
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "providers"


def recorded(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text())


ZENODO_VERSION = RecordSource("zenodo", "zenodo.org", "3242075")
ZENODO_CONCEPT = RecordSource("zenodo", "zenodo.org", "3242074")
FIGSHARE_LATEST = RecordSource("figshare", "figshare.com", "9782777")
FIGSHARE_V1 = RecordSource("figshare", "figshare.com", "9782777", "1")
PID = "doi:10.7910/DVN/TJCLKP"
DATAVERSE_LATEST = RecordSource("dataverse", "dataverse.harvard.edu", PID)
DATAVERSE_V1 = RecordSource("dataverse", "dataverse.harvard.edu", PID, "1.0")
DV_PAGE = "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP"


def test_a_zenodo_version_resolves_to_itself() -> None:
    assert zenodo_version(ZENODO_VERSION, (200, recorded("zenodo_record"))) == RecordVersion(
        provider="zenodo",
        host="zenodo.org",
        record="3242074",
        version="3242075",
        content="https://zenodo.org/records/3242075",
        total_size=9134,
        moves=False,
    )


def test_a_zenodo_concept_resolves_to_its_latest_version() -> None:
    assert zenodo_version(ZENODO_CONCEPT, (200, recorded("zenodo_latest"))) == RecordVersion(
        provider="zenodo",
        host="zenodo.org",
        record="3242074",
        version="3242081",
        content="https://zenodo.org/records/3242081",
        total_size=9377 + 512,
        moves=True,
    )


def test_figshare_current_and_asked_versions() -> None:
    assert figshare_version(FIGSHARE_LATEST, (200, recorded("figshare_article"))) == (
        RecordVersion(
            provider="figshare",
            host="figshare.com",
            record="9782777",
            version="3",
            content="https://figshare.com/articles/_/9782777/3",
            total_size=9024,  # the link-only file is not downloaded
            moves=True,
        )
    )
    assert figshare_version(FIGSHARE_V1, (200, recorded("figshare_version"))) == RecordVersion(
        provider="figshare",
        host="figshare.com",
        record="9782777",
        version="1",
        content="https://figshare.com/articles/_/9782777/1",
        total_size=8710,
        moves=False,
    )


def test_dataverse_latest_and_asked_versions() -> None:
    assert dataverse_version(DATAVERSE_LATEST, (200, recorded("dataverse_dataset"))) == (
        RecordVersion(
            provider="dataverse",
            host="dataverse.harvard.edu",
            record=PID,
            version="3.0",
            content=f"{DV_PAGE}&version=3.0",
            total_size=120 + 4521 + 20480,
            moves=True,
        )
    )
    assert dataverse_version(DATAVERSE_V1, (200, recorded("dataverse_version"))) == (
        RecordVersion(
            provider="dataverse",
            host="dataverse.harvard.edu",
            record=PID,
            version="1.0",
            content=f"{DV_PAGE}&version=1.0",
            total_size=98 + 3900,
            moves=False,
        )
    )


def test_doi_target_is_the_first_url_value() -> None:
    assert doi_target("10.7910/dvn/tjclkp", (200, recorded("doi_handle"))) == (
        "https://dataverse.harvard.edu/citation?persistentId=doi:10.7910/DVN/TJCLKP"
    )


def _without(name: str, *path: str | int) -> Any:
    body = copy.deepcopy(recorded(name))
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def _with(name: str, value: Any, *path: str | int) -> Any:
    body = copy.deepcopy(recorded(name))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


NOT_FOUND: list[tuple[Any, RecordSource, tuple[int, Any], str]] = [
    (
        zenodo_version,
        ZENODO_VERSION,
        (404, recorded("zenodo_not_found")),
        "Zenodo record 3242075 on zenodo.org does not exist or is not public",
    ),
    (zenodo_version, ZENODO_VERSION, (410, None), "does not exist or is not public"),
    (
        zenodo_version,
        ZENODO_VERSION,
        (200, recorded("zenodo_restricted")),
        "Zenodo record 3242075 on zenodo.org is not open access",
    ),
    (
        figshare_version,
        FIGSHARE_V1,
        (404, recorded("figshare_not_found")),
        "Figshare article 9782777 version 1 on figshare.com does not exist",
    ),
    (
        figshare_version,
        FIGSHARE_LATEST,
        (200, _with("figshare_article", False, "is_public")),
        "Figshare article 9782777 is not public",
    ),
    (
        dataverse_version,
        DATAVERSE_V1,
        (404, recorded("dataverse_not_found")),
        f"Dataverse dataset {PID} version 1.0 on dataverse.harvard.edu does not exist",
    ),
    (dataverse_version, DATAVERSE_LATEST, (403, None), "does not exist or is not public"),
    (
        dataverse_version,
        DATAVERSE_LATEST,
        (200, _with("dataverse_dataset", "DRAFT", "data", "latestVersion", "versionState")),
        "has no released version",
    ),
]


@pytest.mark.parametrize(("read", "source", "answer", "message"), NOT_FOUND)
def test_answers_that_mean_no_such_record(
    read: Any, source: RecordSource, answer: tuple[int, Any], message: str
) -> None:
    with pytest.raises(errors.RecordNotFound) as raised:
        read(source, answer)
    assert message in str(raised.value)


UNUSABLE: list[tuple[Any, RecordSource, tuple[int, Any], str]] = [
    (zenodo_version, ZENODO_VERSION, (200, None), "answered 200"),
    (zenodo_version, ZENODO_VERSION, (400, {"message": "bad"}), "answered 400"),
    (
        zenodo_version,
        ZENODO_VERSION,
        (200, _without("zenodo_record", "conceptrecid")),
        "'conceptrecid'",
    ),
    (
        zenodo_version,
        ZENODO_VERSION,
        (200, _with("zenodo_record", "big", "files", 0, "size")),
        "'size'",
    ),
    (
        zenodo_version,
        ZENODO_VERSION,
        (200, _with("zenodo_record", True, "files", 0, "size")),
        "'size'",
    ),
    (
        zenodo_version,
        RecordSource("zenodo", "zenodo.org", "1"),
        (200, recorded("zenodo_record")),
        "answered record 3242075 for record 1",
    ),
    (
        figshare_version,
        FIGSHARE_V1,
        (200, recorded("figshare_article")),
        "answered article 9782777 v3 for 9782777 v1",
    ),
    (
        figshare_version,
        FIGSHARE_LATEST,
        (200, _with("figshare_article", "yes", "is_public")),
        "'is_public'",
    ),
    (figshare_version, FIGSHARE_LATEST, (200, []), "'id'"),
    (
        dataverse_version,
        DATAVERSE_LATEST,
        (200, {"status": "ERROR", "message": "x"}),
        "status 'ERROR'",
    ),
    (
        dataverse_version,
        DATAVERSE_V1,
        (200, recorded("dataverse_dataset")),
        "'datasetPersistentId'",
    ),
    (
        dataverse_version,
        DATAVERSE_LATEST,
        (200, _without("dataverse_dataset", "data", "latestVersion")),
        "'latestVersion'",
    ),
]


@pytest.mark.parametrize(("read", "source", "answer", "message"), UNUSABLE)
def test_answers_we_cannot_read_are_temporary(
    read: Any, source: RecordSource, answer: tuple[int, Any], message: str
) -> None:
    with pytest.raises(errors.ProviderUnavailable) as raised:
        read(source, answer)
    assert message in str(raised.value)


def test_doi_errors() -> None:
    with pytest.raises(errors.RecordNotFound, match=r"DOI 10\.1234/nothing does not exist"):
        doi_target("10.1234/nothing", (404, recorded("doi_not_found")))
    with pytest.raises(errors.RecordNotFound, match="leads to no URL"):
        doi_target("10.1/x", (200, {"responseCode": 1, "values": [{"type": "EMAIL"}]}))
    with pytest.raises(errors.ProviderUnavailable, match="'values'"):
        doi_target("10.1/x", (200, {"responseCode": 1}))


def test_size_limit() -> None:
    check_size(ZENODO_VERSION, 100, 100)
    check_size(ZENODO_VERSION, None, 1)
    check_size(ZENODO_VERSION, 10**12, None)
    with pytest.raises(errors.RecordTooLarge, match="zenodo record 3242075 has 101 bytes"):
        check_size(ZENODO_VERSION, 101, 100)
