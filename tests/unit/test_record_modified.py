"""HydroShare and CKAN (issue 25): their answers read into versions (golden, over the
recorded shapes of tests/data/providers/), the URLs the resolver asks, what the
executor hands repo2docker, and the intake's rule for hosts users name."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import httpx
import pytest

from jobs import errors
from jobs.sources.forms import parse_source
from jobs.sources.providers import stream_request
from jobs.sources.record_versions import (
    ckan_activities,
    ckan_version,
    hydroshare_version,
    modified_version,
)
from jobs.sources.records import RecordSource, RecordVersion, record_content, record_page

from .test_record_apis import Provider, failure, resolve
from .test_record_apis import recorded as recorded_response
from .test_record_versions import recorded

HS_ID = "b8f6eae9d89241cf8b5904033460af61"
HS = RecordSource("hydroshare", "www.hydroshare.org", HS_ID)
HS_API = f"https://www.hydroshare.org/hsapi/resource/{HS_ID}/scimeta/elements"
PKG = "c3c9a1e2-6a4f-4b8e-9d61-2f0b5a7e1d44"
NEWEST = "2b9f4c1e-8d7a-4f3b-a6e5-1c0d9b8a7f6e"
OLDER = "8e7d6c5b-4a3f-4e2d-9c1b-0a9f8e7d6c5b"
CKAN = RecordSource("ckan", "demo.ckan.org", "binder-example")
CKAN_API = "https://demo.ckan.org/api/3/action"


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("2019-09-05T19:35:16.491540Z", "1567712116.491540"),
        ("2019-09-05T19:35:16Z", "1567712116"),
        ("2019-09-05T21:35:16.000001+02:00", "1567712116.000001"),
        ("2024-01-15T10:17:34.519163", "1705313854.519163"),  # CKAN's: no zone, UTC
    ],
)
def test_modification_times_as_versions(text: str, version: str) -> None:
    assert modified_version(text) == version


def test_the_builders_rule_for_modification_times_is_the_services() -> None:
    with warnings.catch_warnings():  # repo2docker's imports warn of their own
        warnings.simplefilter("ignore", DeprecationWarning)
        from binderhub_service_builder.contentproviders.unversioned import (
            modified_version as builders,
        )

    for text in (
        "2019-09-05T19:35:16.491540Z",
        "2024-01-15T10:17:34.519163",
        "2019-09-05T19:35:16Z",
    ):
        assert builders(text) == modified_version(text)


def test_a_hydroshare_resource_resolves_to_its_modification_time() -> None:
    version = hydroshare_version(HS, (200, recorded("hydroshare_scimeta")))
    assert version == RecordVersion(
        "hydroshare",
        "www.hydroshare.org",
        HS_ID,
        "1567712116.491540",
        f"https://www.hydroshare.org/resource/{HS_ID}?modified=1567712116.491540",
        None,
        True,
    )
    page = record_page("hydroshare", version.host, version.record)
    assert record_content("hydroshare", page, version.version) == version.content


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        ((404, recorded("hydroshare_not_found")), errors.RecordNotFound, "does not exist"),
        ((403, {"detail": "no"}), errors.RecordNotFound, "is not public"),
        ((200, {"dates": []}), errors.ProviderUnavailable, "no modification time"),
        ((200, {"title": "x"}), errors.ProviderUnavailable, "usable 'dates'"),
        ((200, None), errors.ProviderUnavailable, "answered 200"),
    ],
)
def test_hydroshare_answers_that_are_errors(answer: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        hydroshare_version(HS, answer)


def test_a_bad_time_is_temporary() -> None:
    body = copy.deepcopy(recorded("hydroshare_scimeta"))
    body["dates"][1]["start_date"] = "yesterday"
    with pytest.raises(errors.ProviderUnavailable, match="time we cannot read"):
        hydroshare_version(HS, (200, body))


def test_the_resolver_asks_hydroshare_s_science_metadata() -> None:
    provider = Provider({HS_API: recorded_response("hydroshare_scimeta")})
    assert resolve(provider, HS).version == "1567712116.491540"
    assert provider.asked == [HS_API]
    gone = Provider({HS_API: recorded_response("hydroshare_not_found", 404)})
    assert isinstance(failure(gone, HS), errors.RecordNotFound)


ACTIVITIES = ckan_activities(CKAN, (200, recorded("ckan_activities")))


def test_ckan_activities_newest_first_or_none_without_the_plugin() -> None:
    assert ACTIVITIES == [NEWEST, OLDER]
    assert ckan_activities(CKAN, (400, recorded("ckan_no_activity_plugin"))) is None
    assert ckan_activities(CKAN, (404, None)) is None


@pytest.mark.parametrize(
    ("source", "activities", "version", "content", "moves"),
    [
        (
            CKAN,
            [NEWEST, OLDER],
            f"1705313854.519163-{NEWEST}",
            f"activity_id={NEWEST}&modified=1705313854.519163",
            True,
        ),
        (CKAN, None, "1705313854.519163", "modified=1705313854.519163", True),
        (CKAN, [], "1705313854.519163", "modified=1705313854.519163", True),
        (
            RecordSource("ckan", "demo.ckan.org", "binder-example", OLDER),
            [NEWEST, OLDER],
            OLDER,
            f"activity_id={OLDER}",
            False,
        ),
    ],
)
def test_ckan_versions(
    source: RecordSource, activities: list[str] | None, version: str, content: str, moves: bool
) -> None:
    resolved = ckan_version(source, (200, recorded("ckan_package")), activities)
    assert (resolved.record, resolved.version, resolved.moves) == (PKG, version, moves)
    assert resolved.content == f"https://demo.ckan.org/dataset/{PKG}?{content}"
    assert resolved.total_size == 41
    page = record_page("ckan", resolved.host, resolved.record)
    assert record_content("ckan", page, resolved.version) == resolved.content


@pytest.mark.parametrize(
    ("source", "answer", "activities", "error", "message"),
    [
        (CKAN, (404, recorded("ckan_not_found")), None, errors.RecordNotFound, "does not exist"),
        (CKAN, (403, {"success": False}), None, errors.RecordNotFound, "not public"),
        (
            RecordSource(
                "ckan", "demo.ckan.org", "binder-example", "0" * 8 + "-0000-0000-0000-" + "0" * 12
            ),
            (200, recorded("ckan_package")),
            [NEWEST, OLDER],
            errors.RecordNotFound,
            "has no activity",
        ),
        (CKAN, (200, {"success": False}), None, errors.ProviderUnavailable, "success false"),
        (
            RecordSource("ckan", "demo.ckan.org", "other"),
            (200, recorded("ckan_package")),
            None,
            errors.ProviderUnavailable,
            "answered dataset",
        ),
    ],
)
def test_ckan_answers_that_are_errors(
    source: RecordSource, answer: Any, activities: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        ckan_version(source, answer, activities)


def test_a_private_ckan_dataset_is_not_found() -> None:
    body = copy.deepcopy(recorded("ckan_package"))
    body["result"]["private"] = True
    with pytest.raises(errors.RecordNotFound, match="is not public"):
        ckan_version(CKAN, (200, body), None)


def test_the_resolver_asks_package_show_then_the_activities_of_the_dataset_s_id() -> None:
    show = f"{CKAN_API}/package_show?id=binder-example"
    activity = f"{CKAN_API}/package_activity_list?id={PKG}"
    provider = Provider(
        {show: recorded_response("ckan_package"), activity: recorded_response("ckan_activities")}
    )
    assert resolve(provider, CKAN).version == f"1705313854.519163-{NEWEST}"
    assert provider.asked == [show, activity]
    plain = Provider(
        {
            show: recorded_response("ckan_package"),
            activity: recorded_response("ckan_no_activity_plugin", 400),
        }
    )
    assert resolve(plain, CKAN).version == "1705313854.519163"
    gone = Provider({show: recorded_response("ckan_not_found", 404)})
    assert isinstance(failure(gone, CKAN), errors.RecordNotFound)
    assert gone.asked == [show]  # no activity asked of a dataset that is not there
    down = Provider({show: httpx.Response(502)})
    assert isinstance(failure(down, CKAN), errors.ProviderUnavailable)


def test_record_content_refuses_what_is_no_ckan_version() -> None:
    with pytest.raises(errors.InvalidRequest, match="no version of a CKAN dataset"):
        record_content("ckan", "https://demo.ckan.org/dataset/x", "latest")


@pytest.mark.parametrize(
    ("provider", "spec", "repo"),
    [
        ("hydroshare", HS_ID, f"https://www.hydroshare.org/resource/{HS_ID}"),
        (
            "hydroshare",
            f"https%3A%2F%2Fwww.hydroshare.org%2Fresource%2F{HS_ID}",
            f"https://www.hydroshare.org/resource/{HS_ID}",
        ),
        ("hydroshare", "10.4211/hs.b8f6eae9d89241cf8b5904033460af61", f"10.4211/hs.{HS_ID}"),
        (
            "ckan",
            "https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fbinder-example",
            "ckan:https://demo.ckan.org/dataset/binder-example",
        ),
        (
            "ckan",
            f"https%3A%2F%2Fdata.example.org%2Fcatalog%2Fdataset%2Fx1%2Fhistory%2F{OLDER}",
            f"ckan:https://data.example.org/catalog/dataset/x1/history/{OLDER}",
        ),
    ],
)
def test_stream_specs_of_hydroshare_and_ckan(provider: str, spec: str, repo: str) -> None:
    assert stream_request(provider, spec) == (repo, None)


def test_a_ckan_spec_parses_to_the_dataset_on_its_host() -> None:
    source = parse_source(f"ckan:https://data.example.org/catalog/dataset/x1/history/{OLDER}")
    assert source == RecordSource("ckan", "data.example.org/catalog", "x1", OLDER)


@pytest.mark.parametrize(
    ("provider", "spec", "message"),
    [
        ("hydroshare", "1234", "a hydroshare spec is hydroshare/<DOI or record URL>"),
        ("hydroshare", "https%3A%2F%2Fzenodo.org%2Frecords%2F1", "a hydroshare spec"),
        ("ckan", "https%3A%2F%2Fdemo.ckan.org%2Fgroup%2Fx", "a ckan spec is ckan/"),
        ("ckan", "binder-example", "a ckan spec is ckan/"),
    ],
)
def test_malformed_stream_specs_of_hydroshare_and_ckan(
    provider: str, spec: str, message: str
) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        stream_request(provider, spec)
    with pytest.raises(errors.InvalidRequest, match="is no CKAN dataset"):
        parse_source("ckan:https://demo.ckan.org/group/x")
