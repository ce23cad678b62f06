"""repo2docker content providers of records that keep no versions of their own
(issue 25): HydroShare resources and CKAN datasets, at the modification time a build is
named after.

A provider of these is handed ``?modified=<version>``: the modification time the image
is tagged with (``jobs.sources.record_versions.modified_version`` of binderhub-service
makes it by the same rule). It reads the time before and after it downloads and raises
``ContentChanged`` unless both equal it: the content then is not the version the tag
names, and the build fails (binderhub-service takes the failure as temporary: the next
request resolves the new version and builds it under its own tag).

``HydroShare`` is handed ``https://www.hydroshare.org/resource/<id>?modified=<version>``
(binderhub-service ``jobs.sources.records.record_content``). HydroShare keeps no
versions of a resource, so the provider reads the resource's modification time
(``GET /hsapi/resource/<id>/scimeta/elements``: the ``dates[]`` entry of ``type``
``modified``, its ``start_date``) before and after it downloads the resource's bag, and
fails (``ContentChanged``) unless both equal the version. The bag is a BagIt zip whose
files are under ``<id>/data/contents/``; since HydroShare moved its storage to S3 (2025)
it is asked for at ``GET /django_s3/download/bags/<id>.zip``, which redirects to
``https://s3.hydroshare.org/bags/<id>.zip`` once the bag is ready. HydroShare prepares a
bag on demand: until then the request answers 200 without ending at that URL, and the
provider asks again every ``BAG_WAIT_SECONDS`` until it has waited
``BAG_TIMEOUT_SECONDS``, then fails (``BagNotReady``: temporary for binderhub-service, the
failure row "record not ready"). Only an answer from the S3 URL is taken for the bag.
Facts from HydroShare's REST API documentation and repo2docker's HydroShare provider
(its download URLs as of November 2025).

``CKAN`` is handed ``https://<host>[/<prefix>]/dataset/<id>?[activity_id=<activity>&]
[modified=<version>]`` (binderhub-service ``jobs.sources.records.record_content``):

- with ``activity_id``, the dataset as of that activity, from CKAN's activity API
  (``activity_data_show?id=<activity>&object_type=package``, CKAN 2.10+; else
  ``activity_show?id=<activity>&include_data=true``: ``result.data.package``, 2.9);
  without, the dataset now (``package_show?id=<id>``);
- with ``modified``, the dataset's ``metadata_modified`` (``package_show``) is read
  before and after the download and must equal it both times (``ContentChanged``
  otherwise): the version moved while it was fetched;
- each of the dataset's ``resources[]`` is downloaded from its ``url`` into a file
  named after the URL's last path segment.

Facts from CKAN's action API documentation (``/api/3/action/<action>``, answers
``{"success": …, "result": …}``).

One module, self-contained (the standard library, ``requests`` and repo2docker's
``ContentProvider``; no relative imports, no ``from __future__``): the local executor
writes its source into a record build's repo2docker configuration file, so that a
repo2docker without this package runs it too.
"""

import calendar
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from repo2docker.contentproviders.base import ContentProvider

TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20
BAG_WAIT_SECONDS = 10
"""How long ``HydroShare`` waits before asking again for a bag HydroShare is preparing."""
BAG_TIMEOUT_SECONDS = 300
"""How long ``HydroShare`` waits for a bag in all (the sum of its waits) before it fails."""
S3_BAGS = "https://s3.hydroshare.org/bags/"
"""Where HydroShare's bag downloads end once a bag is ready: ``<S3_BAGS><id>.zip``."""


class ContentChanged(RuntimeError):
    """The record was modified while it was fetched, or is no longer the version the
    image is named after."""


class BagNotReady(RuntimeError):
    """HydroShare was still preparing a resource's bag when ``HydroShare`` stopped
    waiting: the record's host is slow, nothing is wrong with the record."""


def modified_version(text: str) -> str:
    """An ISO 8601 time (UTC when it gives no zone) as Unix seconds, with the
    microseconds after a dot when there are any: ``2019-09-05T19:20:01.233423Z`` ->
    ``1567711201.233423``. Raises ValueError for another form."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    seconds = calendar.timegm(when.timetuple())
    return f"{seconds}.{when.microsecond:06d}" if when.microsecond else str(seconds)


def check_modified(what: str, expected: str, found: str, when: str) -> None:
    """``ContentChanged`` unless the modification time ``found`` (a version) is
    ``expected``; ``when`` says which check (``before the download``, ``during the
    download``)."""
    if found != expected:
        raise ContentChanged(
            f"{what} was modified {when} (modified {found}, the image is named after "
            f"{expected}): not building it under that name"
        )


def get_json(session: requests.Session, url: str, **params: str) -> Any:
    """``GET url`` as JSON; raises ``requests.HTTPError`` for an error status."""
    response = session.get(
        url, params=params or None, headers={"Accept": "application/json"}, timeout=TIMEOUT_SECONDS
    )
    response.raise_for_status()
    return response.json()


def save(response: requests.Response, target: Path) -> int:
    """Save the body of a streamed ``response`` in ``target``; its size in bytes."""
    size = 0
    with target.open("wb") as out:
        for chunk in response.iter_content(CHUNK_BYTES):
            out.write(chunk)
            size += len(chunk)
    return size


def download(session: requests.Session, url: str, target: Path) -> int:
    """Save what ``GET url`` answers in ``target``; its size in bytes. Raises
    ``requests.HTTPError`` for an error status."""
    with session.get(url, stream=True, timeout=TIMEOUT_SECONDS) as response:
        response.raise_for_status()
        return save(response, target)


def without_query(url: str) -> str:
    """``url`` without its query and fragment."""
    return urlsplit(url)._replace(query="", fragment="").geturl()


def safe_name(name: str) -> str:
    """A file name of a download, without any directory part; ValueError when none is
    left."""
    base = PurePosixPath(name.replace("\\", "/")).name
    if base in ("", ".", ".."):
        raise ValueError(f"no file name in {name[:100]!r}")
    return base


def unpack(archive: Path, inside: str, output_dir: Path) -> Iterator[str]:
    """Extract the members of the zip ``archive`` under the folder ``inside`` (e.g.
    ``<id>/data/contents/``) into ``output_dir``, never outside it; yields a line per
    file. ValueError for a member that would land outside."""
    root = output_dir.resolve()
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            if not member.filename.startswith(inside) or member.is_dir():
                continue
            relative = member.filename[len(inside) :]
            target = (root / relative).resolve()
            if root not in target.parents:
                raise ValueError(f"{member.filename!r} would be written outside the content")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            yield f"Fetched {relative}\n"


_RESOURCE = re.compile(r"^/resource/(?P<id>[0-9a-f]{32})/?$")
_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


def hydroshare_spec(repo: str) -> dict[str, str] | None:
    """The resource and version of what the provider is handed, or None when it is not
    ``https://<host>/resource/<32 hex>?modified=<version>``."""
    parts = urlsplit(repo)
    found = _RESOURCE.match(parts.path)
    versions = parse_qs(parts.query).get("modified", [])
    if parts.scheme != "https" or not parts.hostname or found is None or len(versions) != 1:
        return None
    if not _VERSION.match(versions[0]):
        return None
    return {"host": parts.netloc, "resource": found["id"], "version": versions[0]}


def resource_modified(body: Any) -> str:
    """The modification time of a resource (``scimeta/elements``' answer) as a version."""
    dates = [
        d for d in body.get("dates", []) if isinstance(d, dict) and d.get("type") == "modified"
    ]
    if len(dates) != 1 or not isinstance(dates[0].get("start_date"), str):
        raise ValueError("HydroShare answered no modification time")
    return modified_version(dates[0]["start_date"])


class HydroShare(ContentProvider):  # type: ignore[misc]
    """repo2docker's content provider for a HydroShare resource at a modification time.

    ``bag_wait_seconds``, ``bag_timeout_seconds`` and ``sleep`` (seconds -> None) pace
    its requests for a bag HydroShare is preparing (``BAG_WAIT_SECONDS``,
    ``BAG_TIMEOUT_SECONDS``, ``time.sleep``)."""

    def __init__(self) -> None:
        super().__init__()
        self.session = requests.Session()
        self.bag_wait_seconds: float = BAG_WAIT_SECONDS
        self.bag_timeout_seconds: float = BAG_TIMEOUT_SECONDS
        self.sleep: Callable[[float], None] = time.sleep
        self._spec: dict[str, str] | None = None

    def detect(
        self, repo: str, ref: str | None = None, extra_args: object = None
    ) -> dict[str, str] | None:
        self._spec = hydroshare_spec(repo)
        return self._spec

    @property
    def content_id(self) -> str | None:
        if self._spec is None:
            return None
        return f"{self._spec['resource']}.v{self._spec['version']}"

    def modified(self, spec: dict[str, str]) -> str:
        url = f"https://{spec['host']}/hsapi/resource/{spec['resource']}/scimeta/elements"
        return resource_modified(get_json(self.session, url))

    def download_bag(self, spec: dict[str, str], archive: Path) -> Iterator[str]:
        """Save the resource's bag in ``archive``, asking again while HydroShare prepares
        it; yields log lines. Raises ``BagNotReady`` once it has waited
        ``bag_timeout_seconds``, ``requests.HTTPError`` for an error status."""
        url = f"https://{spec['host']}/django_s3/download/bags/{spec['resource']}.zip"
        ready = f"{S3_BAGS}{spec['resource']}.zip"
        waited = 0.0
        while True:
            with self.session.get(url, stream=True, timeout=TIMEOUT_SECONDS) as response:
                response.raise_for_status()
                if without_query(response.url) == ready:
                    size = save(response, archive)
                    yield f"Downloaded the bag ({size} bytes)\n"
                    return
            if waited >= self.bag_timeout_seconds:
                raise BagNotReady(
                    f"HydroShare has not prepared the bag of resource {spec['resource']} "
                    f"after {waited:g} s of waiting: not ready, try again later"
                )
            yield f"HydroShare is preparing the bag: asking again in {self.bag_wait_seconds:g} s\n"
            self.sleep(self.bag_wait_seconds)
            waited += self.bag_wait_seconds

    def fetch(
        self, spec: dict[str, str], output_dir: str, yield_output: bool = False
    ) -> Iterator[str]:
        what = f"HydroShare resource {spec['resource']}"
        check_modified(what, spec["version"], self.modified(spec), "before the download")
        yield f"Fetching {what} as of {spec['version']}\n"
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / "bag.zip"
            yield from self.download_bag(spec, archive)
            yield from unpack(archive, f"{spec['resource']}/data/contents/", Path(output_dir))
        check_modified(what, spec["version"], self.modified(spec), "during the download")


_DATASET = re.compile(r"^(?P<prefix>(?:/[^/]+)*?)/dataset/(?P<id>[A-Za-z0-9_-]{2,100})/?$")
_ACTIVITY = re.compile(r"^[0-9a-f-]{36}$")
_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


def ckan_spec(repo: str) -> dict[str, str] | None:
    """The API, dataset, activity and version of what the provider is handed, or None
    when it has not the form above (at least one of ``activity_id`` and ``modified``:
    an unpinned dataset is never fetched)."""
    parts = urlsplit(repo)
    found = _DATASET.match(parts.path)
    query = parse_qs(parts.query)
    activities, versions = query.get("activity_id", []), query.get("modified", [])
    if parts.scheme != "https" or not parts.hostname or found is None:
        return None
    if len(activities) > 1 or len(versions) > 1 or not (activities or versions):
        return None
    if (activities and not _ACTIVITY.match(activities[0])) or (
        versions and not _VERSION.match(versions[0])
    ):
        return None
    return {
        "api": f"https://{parts.netloc}{found['prefix']}/api/3/action",
        "dataset": found["id"],
        "activity": activities[0] if activities else "",
        "version": versions[0] if versions else "",
    }


def result_of(body: Any) -> Any:
    """The ``result`` of a successful action's answer; ValueError otherwise."""
    if not isinstance(body, dict) or body.get("success") is not True or "result" not in body:
        raise ValueError("CKAN answered no result")
    return body["result"]


class CKAN(ContentProvider):  # type: ignore[misc]
    """repo2docker's content provider for a CKAN dataset at an activity or a
    modification time."""

    def __init__(self) -> None:
        super().__init__()
        self.session = requests.Session()
        self._spec: dict[str, str] | None = None

    def detect(
        self, repo: str, ref: str | None = None, extra_args: object = None
    ) -> dict[str, str] | None:
        self._spec = ckan_spec(repo)
        return self._spec

    @property
    def content_id(self) -> str | None:
        if self._spec is None:
            return None
        return f"{self._spec['dataset']}.{self._spec['activity'] or self._spec['version']}"

    def package(self, spec: dict[str, str]) -> Any:
        return result_of(get_json(self.session, f"{spec['api']}/package_show", id=spec["dataset"]))

    def package_as_of(self, spec: dict[str, str]) -> Any:
        """The dataset as of ``spec``'s activity (CKAN 2.10+'s action, else 2.9's)."""
        try:
            body = get_json(
                self.session,
                f"{spec['api']}/activity_data_show",
                id=spec["activity"],
                object_type="package",
            )
            return result_of(body)
        except (requests.HTTPError, ValueError):
            body = get_json(
                self.session,
                f"{spec['api']}/activity_show",
                id=spec["activity"],
                include_data="true",
            )
            return result_of(body)["data"]["package"]

    def check(self, spec: dict[str, str], when: str) -> Any:
        """The dataset now, after checking its modification time when ``spec`` has one."""
        package = self.package(spec)
        if spec["version"]:
            found = modified_version(package["metadata_modified"])
            check_modified(f"CKAN dataset {spec['dataset']}", spec["version"], found, when)
        return package

    def fetch(
        self, spec: dict[str, str], output_dir: str, yield_output: bool = False
    ) -> Iterator[str]:
        package = self.check(spec, "before the download")
        if spec["activity"]:
            package = self.package_as_of(spec)
            yield f"Fetching CKAN dataset {spec['dataset']} as of activity {spec['activity']}\n"
        else:
            yield f"Fetching CKAN dataset {spec['dataset']} as of {spec['version']}\n"
        for resource in package.get("resources", []):
            url = resource.get("url") if isinstance(resource, dict) else None
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                continue
            name = safe_name(urlsplit(url).path)
            size = download(self.session, url, Path(output_dir) / name)
            yield f"Fetched {name} ({size} bytes)\n"
        self.check(spec, "during the download")
