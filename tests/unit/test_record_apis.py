"""Resolving records over their providers' APIs (jobs/sources/record_apis.py), with an
injected httpx client whose transport answers the recorded shapes of
tests/data/providers/: which URLs are asked, and what each kind of failure becomes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobs import errors
from jobs.sources.record_apis import MAX_ANSWER_BYTES, RecordResolver
from jobs.sources.records import DoiSource, RecordSource, RecordVersion
from tests.conftest import ROOT
from webhook.errors import headers_for, status_for

DATA = ROOT / "tests" / "data" / "providers"
Route = Callable[[httpx.Request], httpx.Response]


def recorded(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=(DATA / f"{name}.json").read_bytes())


class Provider:
    """A transport answering from ``routes`` (full URL → response or exception) and
    recording each URL asked."""

    def __init__(self, routes: dict[str, httpx.Response | Exception]) -> None:
        self.routes = routes
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.asked.append(url)
        assert request.headers["accept"] == "application/json"
        answer = self.routes.get(url, httpx.Response(404, json={"message": "no route"}))
        if isinstance(answer, Exception):
            raise answer
        return answer


def resolve(provider: Provider, source: RecordSource | DoiSource, **options: Any) -> RecordVersion:
    async def run() -> RecordVersion:
        async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as client:
            return await RecordResolver(client, **options).resolve(source)

    return asyncio.run(run())


def failure(
    provider: Provider, source: RecordSource | DoiSource, **options: Any
) -> errors.BuildServiceError:
    with pytest.raises(errors.BuildServiceError) as raised:
        resolve(provider, source, **options)
    return raised.value


ZENODO = "https://zenodo.org/api/records"
CONCEPT = RecordSource("zenodo", "zenodo.org", "3242074")


def test_zenodo_concept_follows_the_redirect_to_its_latest_version() -> None:
    provider = Provider(
        {
            f"{ZENODO}/3242074": httpx.Response(302, headers={"Location": f"{ZENODO}/3242081"}),
            f"{ZENODO}/3242081": recorded("zenodo_latest"),
        }
    )
    version = resolve(provider, CONCEPT)
    assert (version.record, version.version, version.moves) == ("3242074", "3242081", True)
    assert version.content == "https://zenodo.org/records/3242081"
    assert provider.asked == [f"{ZENODO}/3242074", f"{ZENODO}/3242081"]


def test_zenodo_concept_without_a_redirect_asks_for_the_latest_version() -> None:
    provider = Provider({f"{ZENODO}/3242074/versions/latest": recorded("zenodo_latest")})
    assert resolve(provider, CONCEPT).version == "3242081"
    assert provider.asked == [f"{ZENODO}/3242074", f"{ZENODO}/3242074/versions/latest"]


def test_zenodo_version_is_asked_once() -> None:
    provider = Provider({f"{ZENODO}/3242075": recorded("zenodo_record")})
    source = RecordSource("zenodo", "zenodo.org", "3242075")
    assert resolve(provider, source).moves is False
    assert provider.asked == [f"{ZENODO}/3242075"]


def test_figshare_asks_the_version_or_the_article() -> None:
    base = "https://api.figshare.com/v2/articles/9782777"
    provider = Provider(
        {base: recorded("figshare_article"), f"{base}/versions/1": recorded("figshare_version")}
    )
    assert resolve(provider, RecordSource("figshare", "figshare.com", "9782777")).version == "3"
    assert (
        resolve(provider, RecordSource("figshare", "figshare.com", "9782777", "1")).version == "1"
    )
    assert provider.asked == [base, f"{base}/versions/1"]


def test_dataverse_asks_its_host_by_persistent_id() -> None:
    api = "https://dataverse.harvard.edu/api/datasets/:persistentId/"
    query = "?persistentId=doi%3A10.7910%2FDVN%2FTJCLKP"
    provider = Provider(
        {
            f"{api}{query}": recorded("dataverse_dataset"),
            f"{api}versions/1.0{query}": recorded("dataverse_version"),
        }
    )
    pid = "doi:10.7910/DVN/TJCLKP"
    assert (
        resolve(provider, RecordSource("dataverse", "dataverse.harvard.edu", pid)).version == "3.0"
    )
    v1 = RecordSource("dataverse", "dataverse.harvard.edu", pid, "1.0")
    assert resolve(provider, v1).version == "1.0"
    assert provider.asked == [f"{api}{query}", f"{api}versions/1.0{query}"]


def test_a_doi_is_followed_to_its_provider() -> None:
    provider = Provider(
        {
            "https://doi.org/api/handles/10.7910/dvn/tjclkp": recorded("doi_handle"),
            "https://dataverse.harvard.edu/api/datasets/:persistentId/"
            "?persistentId=doi%3A10.7910%2FDVN%2FTJCLKP": recorded("dataverse_dataset"),
        }
    )
    version = resolve(provider, DoiSource("10.7910/dvn/tjclkp"))
    assert (version.provider, version.record, version.version) == (
        "dataverse",
        "doi:10.7910/DVN/TJCLKP",
        "3.0",
    )


def handle_to(url: str) -> httpx.Response:
    return httpx.Response(200, json={"values": [{"type": "URL", "data": {"value": url}}]})


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://journal.example.org/article/123", "journal.example.org"),
        ("https://github.com/o/r", "github.com"),
        ("not a url", "not a url"),
    ],
)
def test_a_doi_leading_to_no_provider_is_422_naming_the_host(url: str, host: str) -> None:
    provider = Provider({"https://doi.org/api/handles/10.1234/x": handle_to(url)})
    error = failure(provider, DoiSource("10.1234/x"))
    assert isinstance(error, errors.HostNotHandled)
    assert str(error) == f"DOI 10.1234/x leads to {host}, which no provider of this service serves"
    assert status_for(error) == 422


def test_an_unknown_doi_is_422() -> None:
    error = failure(Provider({}), DoiSource("10.1234/nothing"))
    assert isinstance(error, errors.RecordNotFound)
    assert status_for(error) == 422


VERSION = RecordSource("zenodo", "zenodo.org", "3242075")


@pytest.mark.parametrize(
    ("answer", "message", "retry_after"),
    [
        (httpx.Response(503, headers={"Retry-After": "120"}), "zenodo.org answered 503", 120),
        (httpx.Response(502, text="<html>bad gateway</html>"), "zenodo.org answered 502", 30),
        (
            httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
            "answered 429",
            30,
        ),
        (httpx.ConnectError("refused"), "zenodo.org could not be reached: ConnectError", 30),
        (httpx.ReadTimeout("slow"), "zenodo.org did not answer in time", 30),
        (httpx.Response(200, text="<html>maintenance</html>"), "answered 200", 30),
        (
            httpx.Response(302, headers={"Location": "https://evil.example/x"}),
            "redirected off its host",
            30,
        ),
        (
            httpx.Response(302, headers={"Location": f"{ZENODO}/3242075"}),
            "redirected more than 3 times",
            30,
        ),
    ],
)
def test_provider_failures_are_temporary_503(
    answer: httpx.Response | Exception, message: str, retry_after: int
) -> None:
    error = failure(Provider({f"{ZENODO}/3242075": answer}), VERSION)
    assert isinstance(error, errors.ProviderUnavailable)
    assert message in str(error)
    assert status_for(error) == 503
    assert headers_for(error) == {"Retry-After": str(retry_after)}


def test_an_answer_too_large_is_not_read_further() -> None:
    huge = httpx.Response(200, content=b" " * (MAX_ANSWER_BYTES + 1))
    error = failure(Provider({f"{ZENODO}/3242075": huge}), VERSION)
    assert isinstance(error, errors.ProviderUnavailable)
    assert f"zenodo.org answered more than {MAX_ANSWER_BYTES} bytes" in str(error)


def test_a_record_over_the_size_limit_is_refused() -> None:
    provider = Provider({f"{ZENODO}/3242075": recorded("zenodo_record")})
    assert resolve(provider, VERSION, max_record_bytes=9134).total_size == 9134
    error = failure(provider, VERSION, max_record_bytes=9133)
    assert isinstance(error, errors.RecordTooLarge)
    assert status_for(error) == 422


SWH = "https://archive.softwareheritage.org/api/1"
REVISION = "aafb16d69fd30ff58afdd69036a26047f3aebdc6"
DIRECTORY = "7834ef7e7c357ce2af928115c6c6a42b7e2a44e6"


@pytest.mark.parametrize(
    ("swhid", "url", "answer"),
    [
        (f"swh:1:rev:{REVISION}", f"{SWH}/revision/{REVISION}/", "swh_revision"),
        (f"swh:1:dir:{DIRECTORY}", f"{SWH}/directory/{DIRECTORY}/", "swh_directory"),
    ],
)
def test_a_swhid_the_archive_holds_resolves_to_itself(swhid: str, url: str, answer: str) -> None:
    provider = Provider({url: recorded(answer)})
    version = resolve(provider, RecordSource("swh", "archive.softwareheritage.org", swhid))
    assert version == RecordVersion(
        "swh", "archive.softwareheritage.org", swhid, swhid, swhid, None, moves=False
    )
    assert provider.asked == [url]


def test_a_swhid_the_archive_does_not_hold_is_422_naming_it() -> None:
    swhid = "swh:1:rev:" + "0" * 39 + "1"
    provider = Provider({f"{SWH}/revision/{'0' * 39}1/": recorded("swh_not_found", 404)})
    error = failure(provider, RecordSource("swh", "archive.softwareheritage.org", swhid))
    assert isinstance(error, errors.RecordNotFound)
    assert f"SWHID {swhid} on archive.softwareheritage.org does not exist" in str(error)
    assert status_for(error) == 422


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, headers={"Retry-After": "120"}, json={"exception": "down"}),
        httpx.Response(200, json={"id": "f" * 40, "directory": DIRECTORY}),  # another one
        httpx.Response(200, json={"exception": "shape"}),  # no id
    ],
)
def test_a_swhid_whose_answer_is_not_about_it_is_temporary(answer: httpx.Response) -> None:
    provider = Provider({f"{SWH}/revision/{REVISION}/": answer})
    source = RecordSource("swh", "archive.softwareheritage.org", f"swh:1:rev:{REVISION}")
    error = failure(provider, source)
    assert isinstance(error, errors.ProviderUnavailable)
    assert status_for(error) == 503


def test_a_directory_answer_that_is_not_its_entries_is_temporary() -> None:
    provider = Provider({f"{SWH}/directory/{DIRECTORY}/": recorded("swh_revision")})
    source = RecordSource("swh", "archive.softwareheritage.org", f"swh:1:dir:{DIRECTORY}")
    assert isinstance(failure(provider, source), errors.ProviderUnavailable)
