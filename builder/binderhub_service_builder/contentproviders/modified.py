"""What the providers that keep no versions (HydroShare, CKAN) share: their
modification time as a version, the check that it did not move during a download, and
safe downloads and unpacking.

A provider of these is handed ``?modified=<version>``: the modification time the image
is tagged with (``jobs.sources.record_versions.modified_version`` of binderhub-service
makes it by the same rule). It reads the time before and after it downloads and raises
``ContentChanged`` unless both equal it: the content then is not the version the tag
names, and the build fails (binderhub-service takes the failure as temporary: the next
request resolves the new version and builds it under its own tag).
"""

from __future__ import annotations

import calendar
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import requests

TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


class ContentChanged(RuntimeError):
    """The record was modified while it was fetched, or is no longer the version the
    image is named after."""


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


def download(session: requests.Session, url: str, target: Path) -> int:
    """Save what ``GET url`` answers in ``target``; its size in bytes."""
    size = 0
    with session.get(url, stream=True, timeout=TIMEOUT_SECONDS) as response:
        response.raise_for_status()
        with target.open("wb") as out:
            for chunk in response.iter_content(CHUNK_BYTES):
                out.write(chunk)
                size += len(chunk)
    return size


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
