"""repo2docker content providers that fetch exactly the record version they are handed.

``Dataverse`` takes ``https://<host>/dataset.xhtml?persistentId=<pid>&version=<major.minor>``
(a URL without a version is not its: it never fetches "the latest") and fetches that
version of the dataset: the file list of the version from Dataverse's native API, then
each file of that list from its data access API. A file's id names one stored file, so
the files of a version never change once it is published; each file is checked against
the checksum the version lists (except an ingested table fetched as uploaded).

Facts from Dataverse's API guide (native API, "Get Version of a Dataset"; data access
API, "Basic File Access"):

- ``GET /api/datasets/:persistentId/versions/<major.minor>?persistentId=<pid>`` answers
  ``{"status": "OK", "data": {"versionNumber", "versionMinorNumber", "versionState",
  "files": [{"label", "directoryLabel"?, "restricted", "dataFile": {"id", "filename",
  "filesize", "originalFileName"?, "checksum": {"type", "value"}}}]}}``, and
  ``{"status": "ERROR", "message"}`` with 404 for a version or dataset that does not exist;
- ``GET /api/access/datafile/<id>`` answers the file's bytes (often through a redirect
  to the storage); a tabular file Dataverse ingested is served as tab-separated values
  unless ``format=original`` asks for the file as uploaded (``originalFileName``).

The build of a record runs repo2docker with this provider only (binderhub-service's
``jobs/repo2docker/command.py``). The local executor writes this module's source into
repo2docker's configuration file, so that a repo2docker without this package (another
virtualenv) runs it too: it must stay self-contained (the standard library, ``requests``
and repo2docker's ``ContentProvider``; no relative imports, no ``from __future__``).
Proxies and CA bundles come from the environment (``HTTPS_PROXY``, ``REQUESTS_CA_BUNDLE``),
as ``requests`` reads them.
"""

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from repo2docker.contentproviders.base import ContentProvider, ContentProviderException

DATAVERSE_VERSION = re.compile(r"^[0-9]{1,6}\.[0-9]{1,6}$")
"""A released version of a Dataverse dataset: ``<major>.<minor>``."""

DATAVERSE_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$")
"""A host name (lower case), with a port perhaps; no user, no IPv6 literal."""

CHECKSUMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
"""Dataverse's checksum types (``dataFile.checksum.type``) and hashlib's names."""

TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1024 * 1024


def dataverse_spec(url: str) -> Any:
    """The spec of a versioned Dataverse dataset URL: ``{"host", "pid", "version"}``, or
    None when ``url`` is not ``https://<host>/dataset.xhtml?persistentId=<pid>&version=
    <major.minor>`` (one of each, nothing else). Pure."""
    try:
        parts = urlsplit(url)
        host = (parts.netloc or "").lower()
    except ValueError:
        return None
    if parts.scheme != "https" or parts.path != "/dataset.xhtml" or parts.fragment:
        return None
    if not DATAVERSE_HOST.match(host):
        return None
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    if sorted(query) != ["persistentId", "version"]:
        return None
    if any(len(values) != 1 for values in query.values()):
        return None
    pid, version = query["persistentId"][0], query["version"][0]
    if not pid or not DATAVERSE_VERSION.match(version):
        return None
    return {"host": host, "pid": pid, "version": version}


def version_files(spec: Any, answer: Any) -> list[dict[str, Any]]:
    """The files to fetch of the version ``spec`` names, from the native API's answer
    (parsed JSON): each ``{"id", "path", "original", "size", "checksum"}`` (``path``
    relative, ``original`` whether to ask for ``format=original``, ``checksum`` a pair
    of hashlib's name and the hex digest, or None: none listed, or an ingested table's).
    Restricted files are left out (no anonymous download serves them). Raises
    ``ContentProviderException`` when the answer is another version, not released, or
    names a path outside the dataset. Pure."""
    if not isinstance(answer, dict) or answer.get("status") != "OK":
        raise ContentProviderException(f"{spec['host']} answered no dataset version")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise ContentProviderException(f"{spec['host']} answered no dataset version")
    number = f"{data.get('versionNumber')}.{data.get('versionMinorNumber')}"
    if number != spec["version"]:
        raise ContentProviderException(
            f"{spec['host']} answered version {number} of {spec['pid']}, "
            f"not version {spec['version']}"
        )
    if data.get("versionState") != "RELEASED":
        raise ContentProviderException(
            f"version {number} of {spec['pid']} is {data.get('versionState')}, not released"
        )
    files = []
    for entry in data.get("files") or []:
        if entry.get("restricted"):
            continue
        data_file = entry.get("dataFile") or {}
        original = bool(data_file.get("originalFileName"))
        name = data_file.get("originalFileName") if original else entry.get("label")
        name = name or data_file.get("filename")
        path = safe_path(entry.get("directoryLabel") or "", str(name or ""))
        checksum = data_file.get("checksum") or {}
        algorithm = CHECKSUMS.get(str(checksum.get("type", "")).upper())
        files.append(
            {
                "id": int(data_file["id"]),
                "path": path,
                "original": original,
                "size": fetched_size(data_file, original),
                # not checked for an ingested table: whether its listed checksum is of the
                # upload or of the stored table is not said; its id pins it all the same
                "checksum": (algorithm, str(checksum["value"]).lower())
                if algorithm and checksum.get("value") and not original
                else None,
            }
        )
    return files


def fetched_size(data_file: Any, original: bool) -> Any:
    """Bytes the download of a listed file is: for an ingested table fetched as
    uploaded, ``originalFileSize`` when listed; else ``filesize`` (None when neither
    is a number). The service counts the same against its size limit. Pure."""
    size = data_file.get("originalFileSize") if original else None
    if type(size) is not int:
        size = data_file.get("filesize")
    return size if type(size) is int else None


def safe_path(directory: str, name: str) -> str:
    """``directory/name`` as a relative path inside the dataset; raises
    ``ContentProviderException`` for an empty name, an absolute path or a ``..``. Pure."""
    parts = [p for p in f"{directory}/{name}".replace("\\", "/").split("/") if p not in ("", ".")]
    if not name or not parts or ".." in parts or "\x00" in name + directory:
        raise ContentProviderException(f"refusing the file path {directory!r}/{name!r}")
    return "/".join(parts)


class Dataverse(ContentProvider):  # type: ignore[misc]
    """Fetches one released version of a Dataverse dataset, named by a URL with its
    ``version`` (``dataverse_spec``); see the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "binderhub-service-builder"
        self._content_id: Any = None

    def detect(self, source: Any, ref: Any = None, extra_args: Any = None) -> Any:
        """The spec of ``source`` (``dataverse_spec``), or None; a ``ref`` is never
        taken (the URL names the version)."""
        if ref is not None or not isinstance(source, str):
            return None
        return dataverse_spec(source)

    @property
    def content_id(self) -> Any:
        """``<pid>-v<version>`` once fetched."""
        return self._content_id

    def fetch(self, spec: Any, output_dir: str, yield_output: bool = False) -> Iterator[str]:
        """Fetch the version ``spec`` names into ``output_dir``, yielding log lines.
        Raises ``ContentProviderException`` (or ``requests``' errors) when the version
        or a file cannot be fetched as listed."""
        host, pid, version = spec["host"], spec["pid"], spec["version"]
        url = f"https://{host}/api/datasets/:persistentId/versions/{version}"
        yield f"Fetching version {version} of Dataverse dataset {pid} from {host}\n"
        response = self.session.get(
            url,
            params={"persistentId": pid},
            headers={"Accept": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
        if response.status_code == 404:
            raise ContentProviderException(f"{host} has no version {version} of {pid}")
        response.raise_for_status()
        files = version_files(spec, response.json())
        for entry in files:
            yield f"Fetching {entry['path']}\n"
            self._fetch_file(host, entry, output_dir)
        self._content_id = f"{pid}-v{version}"
        yield f"Fetched {len(files)} files of version {version} of {pid}\n"

    def _fetch_file(self, host: str, entry: dict[str, Any], output_dir: str) -> None:
        """Download one file to its path under ``output_dir`` and check its checksum."""
        params = {"format": "original"} if entry["original"] else None
        target = os.path.join(output_dir, *entry["path"].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        digest = hashlib.new(entry["checksum"][0]) if entry["checksum"] else None
        with self.session.get(
            f"https://{host}/api/access/datafile/{entry['id']}",
            params=params,
            stream=True,
            timeout=TIMEOUT_SECONDS,
        ) as response:
            response.raise_for_status()
            with open(target, "xb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    out.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
        if digest is not None and digest.hexdigest() != entry["checksum"][1]:
            raise ContentProviderException(
                f"{entry['path']} (file {entry['id']}) does not match its "
                f"{entry['checksum'][0]} checksum: the version's files changed"
            )
