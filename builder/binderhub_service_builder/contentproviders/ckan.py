"""CKAN datasets at the version a build is named after (issue 25).

Handed ``https://<host>[/<prefix>]/dataset/<id>?[activity_id=<activity>&][modified=
<version>]`` (binderhub-service ``jobs.sources.records.record_content``):

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
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from repo2docker.contentproviders.base import ContentProvider

from .modified import check_modified, download, get_json, modified_version, safe_name

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
