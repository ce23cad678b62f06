"""HydroShare resources at the modification time a build is named after (issue 25).

Handed ``https://www.hydroshare.org/resource/<id>?modified=<version>`` (binderhub-service
``jobs.sources.records.record_content``). HydroShare keeps no versions of a resource, so
the provider reads the resource's modification time (``GET /hsapi/resource/<id>/
scimeta/elements``: the ``dates[]`` entry of ``type`` ``modified``, its ``start_date``)
before and after it downloads the resource's bag (``GET /django_irods/download/bags/
<id>.zip``, a BagIt zip whose files are under ``<id>/data/contents/``), and fails
(``ContentChanged``) unless both equal the version. Facts from HydroShare's REST API
documentation.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from repo2docker.contentproviders.base import ContentProvider

from .modified import check_modified, download, get_json, modified_version, unpack

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
    """repo2docker's content provider for a HydroShare resource at a modification time."""

    def __init__(self) -> None:
        super().__init__()
        self.session = requests.Session()
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

    def fetch(
        self, spec: dict[str, str], output_dir: str, yield_output: bool = False
    ) -> Iterator[str]:
        what = f"HydroShare resource {spec['resource']}"
        check_modified(what, spec["version"], self.modified(spec), "before the download")
        yield f"Fetching {what} as of {spec['version']}\n"
        bag = f"https://{spec['host']}/django_irods/download/bags/{spec['resource']}.zip"
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / "bag.zip"
            size = download(self.session, bag, archive)
            yield f"Downloaded the bag ({size} bytes)\n"
            yield from unpack(archive, f"{spec['resource']}/data/contents/", Path(output_dir))
        check_modified(what, spec["version"], self.modified(spec), "during the download")
