"""Sources that are not git (issue 25): a record of a content provider as asked
(``RecordSource``), a DOI whose host is not known yet (``DoiSource``), a git source as
a pasted URL gave it (``GitSource``), and what a record resolves to (``RecordVersion``).
Pure: data shapes and their checks, no I/O. ``docs/design-providers.md`` is the design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from ..errors import InvalidRequest
from .specs import RepoSpec

RecordProvider = Literal["zenodo", "figshare", "dataverse", "hydroshare", "ckan", "swh", "hg"]
RECORD_PROVIDERS: tuple[RecordProvider, ...] = (
    "zenodo",
    "figshare",
    "dataverse",
    "hydroshare",
    "ckan",
    "swh",
    "hg",
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
    if source.provider == "hg":
        return f"Mercurial repository {source.record} at {source.version or 'default'}"
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


BUILT_PROVIDERS: frozenset[RecordProvider] = frozenset(
    {"zenodo", "figshare", "dataverse", "hydroshare", "ckan", "swh", "hg"}
)
"""The providers whose records this service builds end to end (resolved, named, handed
to repo2docker as the resolved version, tested against their stand-ins). Another
provider's records are refused (422) before anything is recorded: they build once their
version can be handed to repo2docker and pinned (docs/design-providers.md)."""

CONTENT_PROVIDER_CLASSES: dict[RecordProvider, str] = {
    "zenodo": "repo2docker.contentproviders.Zenodo",
    "figshare": "repo2docker.contentproviders.Figshare",
    "swh": "repo2docker.contentproviders.Swhid",
    "hg": "repo2docker.contentproviders.Mercurial",
    # repo2docker's own fetches the latest version only; ours the version it is handed
    "dataverse": "binderhub_service_builder.contentproviders.dataverse.Dataverse",
    "hydroshare": "binderhub_service_builder.contentproviders.unversioned.HydroShare",
    "ckan": "binderhub_service_builder.contentproviders.unversioned.CKAN",
}
"""The one repo2docker content provider that fetches each provider's ``content``
(``RecordVersion.content``): a build of a record runs with that provider only. Ours
(``binderhub_service_builder``, builder/) check what repo2docker's cannot: HydroShare's
and CKAN's modification time before and after the download."""

_CKAN_VERSION = re.compile(r"^(?P<modified>[0-9]+(?:\.[0-9]+)?)(?:-(?P<activity>[0-9a-f-]{36}))?$")

REF_PROVIDERS: frozenset[RecordProvider] = frozenset({"hg"})
"""Providers whose ``content`` is a repository handed to repo2docker with ``--ref``
and the version (a Mercurial changeset id), as a git commit is."""


def record_page(provider: RecordProvider, host: str, record: str) -> str:
    """The record's page across its versions, as builds record it (``Build.repo``):
    ``https://zenodo.org/records/<concept>``, ``https://figshare.com/articles/_/<id>``,
    ``https://<host>/dataset.xhtml?persistentId=<pid>``, ... Pure."""
    if provider == "zenodo":
        return f"https://{host}/records/{record}"
    if provider == "figshare":
        return f"https://{host}/articles/_/{record}"
    if provider == "dataverse":
        return f"https://{host}/dataset.xhtml?persistentId={record}"
    if provider == "hydroshare":
        return f"https://{host}/resource/{record}"
    if provider == "ckan":
        return f"https://{host}/dataset/{record}"
    if provider == "hg":  # the repository's URL
        return record
    return f"https://{host}/{record}"


def dataverse_content(host: str, pid: str, version: str) -> str:
    """What repo2docker is handed for ``version`` (``major.minor``) of the Dataverse
    dataset ``pid`` on ``host``: ``https://<host>/dataset.xhtml?persistentId=<pid>&
    version=<version>``, the pid escaped as a query value (``:`` and ``/`` kept), the
    form ``binderhub_service_builder.contentproviders.dataverse.Dataverse`` fetches. Pure."""
    query = urlencode({"persistentId": pid, "version": version}, safe=":/")
    return f"https://{host}/dataset.xhtml?{query}"


def record_content(provider: str, page: str, version: str) -> str:
    """What repo2docker is handed to fetch ``version`` of the record whose page is
    ``page`` (``record_page``): the same as ``RecordVersion.content``. Raises
    ``InvalidRequest`` for a provider whose records are not built."""
    if provider == "zenodo":
        return f"{page.rsplit('/', 1)[0]}/{version}"
    if provider == "figshare":
        return f"{page}/{version}"
    if provider == "swh":  # the SWHID core: immutable, its page and version name it
        return version
    if provider == "hg":  # the repository, with the changeset as its --ref (REF_PROVIDERS)
        return page
    if provider == "hydroshare":
        return f"{page}?modified={version}"
    if provider == "ckan":
        if re.match(r"^[0-9a-f-]{36}$", version):  # an activity asked for: fixed
            return f"{page}?activity_id={version}"
        found = _CKAN_VERSION.match(version)
        if found is None:
            raise InvalidRequest(f"{version!r} is no version of a CKAN dataset")
        activity = f"activity_id={found['activity']}&" if found["activity"] else ""
        return f"{page}?{activity}modified={found['modified']}"
    if provider == "dataverse":
        host_part, _, pid = page.partition("/dataset.xhtml?persistentId=")
        return dataverse_content(host_part.removeprefix("https://"), pid, version)
    raise InvalidRequest(f"{provider} records cannot be built by this service yet")


def record_keys(source: RecordSource | DoiSource) -> tuple[str, ...]:
    """What ``allowed_repos`` patterns are matched against for ``source``: ``doi:<doi>``
    for a DOI; for a record, ``<provider>:<host>/<record>``, its page
    (``record_page``) and its DOI when the record's id gives it (Zenodo on zenodo.org,
    Figshare, a Dataverse persistent id that is a DOI). Pure."""
    if isinstance(source, DoiSource):
        return (f"doi:{source.doi}",)
    if source.provider == "hg":  # hg:<host>/<path>, and its URL as git patterns read it
        return (f"hg:{source.record.split('://', 1)[1]}", source.record)
    keys = [
        f"{source.provider}:{source.host}/{source.record}",
        record_page(source.provider, source.host, source.record),
    ]
    if source.provider == "zenodo" and source.host == "zenodo.org":
        keys.append(f"doi:10.5281/zenodo.{source.record}")
    elif source.provider == "figshare":
        keys.append(f"doi:10.6084/m9.figshare.{source.record}")
    elif source.provider == "dataverse" and source.record.lower().startswith("doi:"):
        keys.append(source.record.lower())
    return tuple(keys)
