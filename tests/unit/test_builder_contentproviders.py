"""builder/'s content providers for HydroShare and CKAN (issue 25): what they accept to
fetch, the safe unpacking of a HydroShare bag, and HydroShare's bag download (asked for
again while HydroShare prepares it, taken only from S3) through ``requests`` with a
transport adapter answering for HydroShare. Their fetches in builds run against the
stand-ins in tests/integration/test_hydroshare_ckan_builds.py."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests
from requests.adapters import BaseAdapter

from jobs.model import LogLine
from jobs.repo2docker.failures import Failure, classify_failure
from tests.conftest import ROOT

with warnings.catch_warnings():  # repo2docker's imports warn of their own
    warnings.simplefilter("ignore", DeprecationWarning)
    from binderhub_service_builder.contentproviders.unversioned import (
        CKAN,
        BagNotReady,
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


HS_SPEC = {"host": "www.hydroshare.org", "resource": HS_ID, "version": "1567712116.491540"}
HS_META = f"https://www.hydroshare.org/hsapi/resource/{HS_ID}/scimeta/elements"
HS_BAG = f"https://www.hydroshare.org/django_s3/download/bags/{HS_ID}.zip"
HS_S3 = f"https://s3.hydroshare.org/bags/{HS_ID}.zip"
PREPARING = (200, {"Content-Type": "text/html"}, b"<p>Preparing the bag</p>")
Answer = tuple[int, Mapping[str, str], bytes]


class Answers(BaseAdapter):
    """A ``requests`` transport answering each URL from its list of answers, in order
    (the last one again once the list is used up), 404 for any other URL; ``asked``
    lists every URL asked, in order."""

    def __init__(self, answers: dict[str, list[Answer]]) -> None:
        super().__init__()
        self.answers = answers
        self.asked: list[str] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        url = str(request.url)
        self.asked.append(url)
        queue = self.answers.get(url, [(404, {}, b"")])
        status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.raw = io.BytesIO(body)
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        pass


def bag_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"{HS_ID}/bagit.txt", "BagIt-Version: 0.97\n")
        archive.writestr(f"{HS_ID}/data/contents/Dockerfile", "FROM x\n")
    return out.getvalue()


def hydroshare(
    bag: list[Answer], s3: Answer | None = None
) -> tuple[HydroShare, Answers, list[float]]:
    """A provider whose session reaches ``Answers`` (the resource modified at the spec's
    version, its bag as ``bag`` answers, S3 answering ``s3`` or the bag), and the list of
    the waits it slept."""
    meta = (ROOT / "tests" / "data" / "providers" / "hydroshare_scimeta.json").read_bytes()
    answers = Answers(
        {
            HS_META: [(200, {"Content-Type": "application/json"}, meta)],
            HS_BAG: bag,
            HS_S3: [s3 or (200, {"Content-Type": "application/zip"}, bag_zip())],
        }
    )
    provider = HydroShare()
    provider.session.mount("https://", answers)
    slept: list[float] = []
    provider.sleep = slept.append
    return provider, answers, slept


READY: Answer = (302, {"Location": HS_S3}, b"")


def test_a_ready_bag_is_downloaded_from_s3_between_two_checks(tmp_path: Path) -> None:
    provider, answers, slept = hydroshare([READY])
    log = list(provider.fetch(HS_SPEC, str(tmp_path)))
    assert answers.asked == [HS_META, HS_BAG, HS_S3, HS_META]
    assert slept == []
    assert (tmp_path / "Dockerfile").read_text() == "FROM x\n"
    assert log[-1] == "Fetched Dockerfile\n"


def test_a_bag_being_prepared_is_asked_for_again_after_a_wait(tmp_path: Path) -> None:
    provider, answers, slept = hydroshare([PREPARING, PREPARING, READY])
    provider.bag_wait_seconds = 7
    log = list(provider.fetch(HS_SPEC, str(tmp_path)))
    assert answers.asked == [HS_META, HS_BAG, HS_BAG, HS_BAG, HS_S3, HS_META]
    assert slept == [7, 7]
    assert log.count("HydroShare is preparing the bag: asking again in 7 s\n") == 2
    assert (tmp_path / "Dockerfile").read_text() == "FROM x\n"


def test_a_bag_not_ready_in_time_is_a_temporary_failure_naming_it(tmp_path: Path) -> None:
    # a zip answered at the download URL itself is not taken either: only S3's is the bag
    zipped = (200, {"Content-Type": "application/zip"}, bag_zip())
    for answer in (PREPARING, zipped):
        provider, answers, slept = hydroshare([answer])
        provider.bag_wait_seconds, provider.bag_timeout_seconds = 10, 30
        with pytest.raises(BagNotReady) as raised:
            list(provider.fetch(HS_SPEC, str(tmp_path)))
        assert slept == [10, 10, 10]
        assert answers.asked == [HS_META] + [HS_BAG] * 4
        assert list(tmp_path.iterdir()) == []
        error = f"Error during build: {raised.value}\n"
        failure = classify_failure(1, [LogLine("failed", error)], "registry.example/x:1")
        assert failure == Failure(
            "the record was not ready to download: HydroShare has not prepared the bag of "
            f"resource {HS_ID} after 30 s of waiting: not ready, try again later"
        )


def test_a_bag_download_failing_at_s3_fails_the_fetch(tmp_path: Path) -> None:
    provider, answers, _ = hydroshare([READY], s3=(403, {}, b"denied"))
    with pytest.raises(requests.HTTPError, match="403"):
        list(provider.fetch(HS_SPEC, str(tmp_path)))
    assert answers.asked == [HS_META, HS_BAG, HS_S3]
