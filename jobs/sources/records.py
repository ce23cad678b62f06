"""Sources that are not git (issue 25): a record of a content provider as asked
(``RecordSource``), a DOI whose host is not known yet (``DoiSource``), a git source as
a pasted URL gave it (``GitSource``), and what a record resolves to (``RecordVersion``).
Pure: data shapes and their checks, no I/O. ``docs/design-providers.md`` is the design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidRequest
from .specs import RepoSpec

RecordProvider = Literal["zenodo", "figshare", "dataverse", "hydroshare", "ckan", "swh"]
RECORD_PROVIDERS: tuple[RecordProvider, ...] = (
    "zenodo",
    "figshare",
    "dataverse",
    "hydroshare",
    "ckan",
    "swh",
)

MAX_DOI_LENGTH = 300
DOI_RE = re.compile(r"^10\.[0-9]{4,9}(?:\.[0-9]+)*/[\x21-\x7e]+$")
"""A DOI: the ``10.`` directory, a registrant code (dot-separated digits), ``/`` and a
suffix of printable ASCII (the DOI Handbook allows more; every DOI of the providers we
serve is ASCII)."""

SWHID_RE = re.compile(r"^swh:1:(?P<type>ori|snp|rel|rev|dir|cnt):(?P<hash>[0-9a-f]{40})$")
"""The core of a SWHID (docs.softwareheritage.org, persistent identifiers), version 1."""


@dataclass(frozen=True)
class GitSource:
    """A git repository and a ref, from a spec or a pasted URL.

    ``ref_has_path``: the ref came from a tree or blob URL, whose rest may go on into a
    path (``tree/release/1.0/docs``); the ref is then the longest prefix of ``spec.ref``
    that names a ref of the repository (see docs/design-providers.md).
    """

    spec: RepoSpec
    ref_has_path: bool = False


@dataclass(frozen=True)
class RecordSource:
    """A record of a content provider, and the version asked for.

    ``host``: the host serving the record (``zenodo.org``, ``dataverse.harvard.edu``).
    ``record``: the record as asked (a Zenodo record id, a Figshare article id, a
    Dataverse persistent id ``doi:10.7910/DVN/TJCLKP``, a HydroShare resource id, a CKAN
    dataset name, a SWHID core). ``version``: the version asked for (Figshare ``2``,
    Dataverse ``1.0``, a CKAN activity id), None for the latest (or, for Zenodo and SWH,
    because the record is the version).
    """

    provider: RecordProvider
    host: str
    record: str
    version: str | None = None


@dataclass(frozen=True)
class DoiSource:
    """A DOI (lower case, no ``doi:`` or resolver prefix) whose provider is known only
    once doi.org says where it leads."""

    doi: str


Source = GitSource | RecordSource | DoiSource


@dataclass(frozen=True)
class RecordVersion:
    """What a ``RecordSource`` resolved to: one immutable version of a record.

    ``record``: the record's identity across its versions (Zenodo's concept record id,
    the Figshare article id, the Dataverse dataset's persistent id, ...). ``version``:
    the immutable version (the Zenodo record id of the version, the Figshare version
    number, Dataverse ``major.minor``, ...). ``content``: exactly what repo2docker is
    handed to fetch that version. ``total_size``: bytes of its files, None when the API
    does not say. ``moves``: whether asking the same ``RecordSource`` again may resolve
    to another version (it named no version).
    """

    provider: RecordProvider
    host: str
    record: str
    version: str
    content: str
    total_size: int | None
    moves: bool


def describe(source: Source) -> str:
    """How messages name a source: ``zenodo record 3242074 on zenodo.org``, ``DOI
    10.7910/dvn/tjclkp``, ``https://github.com/o/r at main``."""
    if isinstance(source, GitSource):
        return f"{source.spec.url} at {source.spec.ref}"
    if isinstance(source, DoiSource):
        return f"DOI {source.doi}"
    version = f" version {source.version}" if source.version is not None else ""
    return f"{source.provider} record {source.record}{version} on {source.host}"


def check_doi(text: str) -> str:
    """``text`` as a DOI in canonical form (lower case: DOIs are case-insensitive), or
    ``InvalidRequest`` naming the form expected. ``text`` has no ``doi:`` prefix."""
    doi = text.strip().lower()
    if len(doi) > MAX_DOI_LENGTH or not DOI_RE.match(doi):
        raise InvalidRequest(
            f"{text[:100]!r} is not a DOI: a DOI is 10.<registrant>/<suffix>, "
            "e.g. 10.5281/zenodo.3242074"
        )
    return doi


def check_swhid(text: str) -> str:
    """The core of a SWHID (qualifiers after ``;`` dropped) naming a directory or a
    revision, the two repo2docker fetches; ``InvalidRequest`` naming the form otherwise."""
    core = text.strip().split(";", 1)[0]
    match = SWHID_RE.match(core)
    if match is None:
        raise InvalidRequest(
            f"{text[:100]!r} is not a SWHID: it is swh:1:<type>:<40 hex digits>, "
            "e.g. swh:1:dir:" + "0" * 40
        )
    if match["type"] not in ("dir", "rev"):
        raise InvalidRequest(
            f"SWHID {core} names a {match['type']}: give a directory (swh:1:dir:…) "
            "or a revision (swh:1:rev:…)"
        )
    return core
