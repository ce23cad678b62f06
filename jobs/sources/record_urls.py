"""Record pages users paste (Zenodo, Figshare, Dataverse, HydroShare, CKAN, gists) and
DOIs whose registrant mints them in a known form, turned into sources (issue 25).
Pure functions, no I/O.

The page layouts are the providers' own: Zenodo ``/records/<id>`` (also ``/record/<id>``
and ``/doi/<doi>``), Figshare ``/articles/[<type>/]<slug>/<id>[/<version>]``, Dataverse
``/dataset.xhtml?persistentId=<pid>[&version=<v>]`` (also ``/citation``), HydroShare
``/resource/<32 hex>``, CKAN ``[<prefix>]/dataset/<name>[/history/<activity>]`` (or
``?activity_id=``) on any host but a public git forge's, gists
``gist.github.com/[<user>/]<id>[.git][/<sha>]``. Zenodo mints DOIs
``10.5281/zenodo.<record>`` (its sandbox ``10.5072/zenodo.<record>``) and Figshare
``10.6084/m9.figshare.<article>[.v<version>]``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from ..errors import InvalidRequest
from .records import GitSource, RecordSource, check_doi
from .specs import repo_spec

ZENODO_HOSTS = frozenset({"zenodo.org", "sandbox.zenodo.org"})
FIGSHARE_HOSTS = re.compile(r"^(?:[a-z0-9-]+\.)?figshare\.com$")
HYDROSHARE_HOSTS = frozenset({"www.hydroshare.org", "hydroshare.org"})
GIST_HOST = "gist.github.com"

_RECORD_ID = re.compile(r"^[1-9][0-9]{0,11}$")
_ZENODO_DOI = re.compile(r"^10\.(5281|5072)/zenodo\.([1-9][0-9]{0,11})$")
_FIGSHARE_DOI = re.compile(r"^10\.6084/m9\.figshare\.([1-9][0-9]{0,11})(?:\.v([1-9][0-9]{0,5}))?$")
_FIGSHARE_PATH = re.compile(
    r"^/articles/(?:[^/]+/){1,2}?([1-9][0-9]{0,11})(?:/([1-9][0-9]{0,5}))?/?$"
)
_HYDROSHARE_ID = re.compile(r"^[0-9a-f]{32}$")
_GIST_ID = re.compile(r"^[0-9a-f]{20,32}$|^[1-9][0-9]{0,9}$")
_GIST_USER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_CKAN_NAME = re.compile(r"^[a-z0-9_-]{2,100}$|^[0-9a-f-]{36}$")
_CKAN_PREFIX_SEGMENT = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._~-]{1,100}$")
_DATAVERSE_VERSION = re.compile(r"^[0-9]{1,6}\.[0-9]{1,6}$")
_PERSISTENT_ID = re.compile(r"^(?:doi:10\.[0-9.]+/|hdl:[0-9.]+/)[\x21-\x7e]+$", re.IGNORECASE)
_SHA = re.compile(r"^[0-9a-f]{40}$")
_GIST_HEADS = ("HEAD", "main", "master")


def doi_record(doi: str) -> RecordSource | None:
    """The record a Zenodo or Figshare DOI names, read from the DOI alone; None for a
    DOI of another registrant (to be followed with doi.org). ``doi`` is canonical."""
    zenodo = _ZENODO_DOI.match(doi)
    if zenodo:
        host = "zenodo.org" if zenodo[1] == "5281" else "sandbox.zenodo.org"
        return RecordSource("zenodo", host, zenodo[2])
    figshare = _FIGSHARE_DOI.match(doi)
    if figshare:
        return RecordSource("figshare", "figshare.com", figshare[1], figshare[2])
    return None


def zenodo_page(host: str, segments: list[str]) -> RecordSource:
    """``/records/<id>``, ``/record/<id>``, ``/api/records/<id>`` or ``/doi/<doi>``."""
    if segments[:1] == ["api"]:
        segments = segments[1:]
    if (
        len(segments) >= 2
        and segments[0] in ("records", "record")
        and _RECORD_ID.match(segments[1])
    ):
        return RecordSource("zenodo", host, segments[1])
    if segments[:1] == ["doi"] and len(segments) >= 3:
        found = doi_record(check_doi("/".join(segments[1:3])))
        if found is not None and found.provider == "zenodo":
            return found
    raise InvalidRequest(f"a Zenodo URL is https://{host}/records/<record id>")


def figshare_page(path: str) -> RecordSource:
    """``/articles/[<type>/]<slug>/<id>[/<version>]`` on figshare.com or an
    institution's ``<name>.figshare.com`` (one API serves them all)."""
    match = _FIGSHARE_PATH.match(path)
    if match is None:
        raise InvalidRequest(
            "a Figshare URL is https://figshare.com/articles/<type>/<title>/<id>[/<version>]"
        )
    return RecordSource("figshare", "figshare.com", match[1], match[2])


def hydroshare_page(host: str, segments: list[str]) -> RecordSource:
    """``/resource/<32 hex digits>``."""
    if len(segments) >= 2 and segments[0] == "resource" and _HYDROSHARE_ID.match(segments[1]):
        return RecordSource("hydroshare", "www.hydroshare.org", segments[1])
    raise InvalidRequest(f"a HydroShare URL is https://{host}/resource/<32 hex digits>")


def dataverse_page(host: str, query: str) -> RecordSource:
    """``/dataset.xhtml`` or ``/citation`` with ``persistentId`` (and ``version``)."""
    fields = parse_qs(query)
    pids = fields.get("persistentId", [])
    versions = fields.get("version", [])
    if len(pids) != 1 or not _PERSISTENT_ID.match(pids[0]) or len(versions) > 1:
        raise InvalidRequest(
            f"a Dataverse URL is https://{host}/dataset.xhtml?persistentId=doi:<DOI>"
            "[&version=<major.minor>]"
        )
    version = versions[0] if versions else None
    if version is not None and version.upper() in ("DRAFT", ":LATEST"):
        version = None
    if version is not None and not _DATAVERSE_VERSION.match(version):
        raise InvalidRequest(f"a Dataverse version is <major>.<minor>, e.g. 1.0 (not {version!r})")
    scheme, _, rest = pids[0].partition(":")
    # the case is kept: the API's answer gives the canonical spelling
    return RecordSource("dataverse", host, f"{scheme.lower()}:{rest}", version)


CKAN_DATASET_PATH = re.compile(
    r"^(?P<prefix>(?:/[^/]+)*?)/dataset/(?P<name>[^/]+)(?:/history/(?P<activity>[^/]+))?/?$"
)
"""The path of a CKAN dataset's page: ``[<prefix>]/dataset/<name or id>``, or its page at
an activity ``…/history/<activity id>`` (CKAN's own layout; a CKAN may live under a
path prefix). The name is checked apart (``_CKAN_NAME``)."""

GIT_FORGE_HOSTS = frozenset(
    {"github.com", "www.github.com", "gitlab.com", "codeberg.org", "gitea.com", "bitbucket.org"}
)
"""Public git forges: a path of theirs is a repository's, never a CKAN dataset's
(``github.com/dataset/tools`` is the repository ``tools`` of the owner ``dataset``)."""


def ckan_page(host: str, path: str, query: str, *, on_forge: bool = True) -> RecordSource | None:
    """The CKAN dataset of a page whose ``path`` is CKAN's dataset form
    (``CKAN_DATASET_PATH``) with a dataset name or id, its activity from the path or
    ``?activity_id=``; the host is recorded with its path prefix. None when the path is
    not that form, or the name is none CKAN gives (so ``…/dataset/tools.git`` stays a
    git repository's URL), or the host is one of ``GIT_FORGE_HOSTS`` unless
    ``on_forge`` (``ckan:<URL>`` says it is a CKAN). ``InvalidRequest`` for an activity
    that is not a UUID."""
    match = CKAN_DATASET_PATH.match(path)
    if match is None or not _CKAN_NAME.match(match["name"]):
        return None
    if not on_forge and host in GIT_FORGE_HOSTS:
        return None
    prefix = match["prefix"]
    if not all(_CKAN_PREFIX_SEGMENT.match(segment) for segment in prefix.split("/")[1:]):
        # the prefix is part of the host asked and of what allowed_repos reads: no
        # ``..`` (``ckan:<host>/safe/*`` must not admit ``<host>/safe/../other``), no escapes
        raise InvalidRequest(
            "a CKAN path prefix is plain path segments (letters, digits, '-', '_', '.', '~'),"
            " without '.' or '..' segments"
        )
    activity = match["activity"] or parse_qs(query).get("activity_id", [None])[0]
    if activity is not None and not re.match(r"^[0-9a-f-]{36}$", activity):
        raise InvalidRequest("a CKAN activity id is a UUID")
    return RecordSource("ckan", f"{host}{prefix}", match["name"], activity)


def gist_page(segments: list[str], ref: str | None = None) -> GitSource:
    """``[<user>/]<id>[.git][/<sha>]`` of gist.github.com, as a git repository: the
    gist's clone URL without the user or ``.git`` (one gist, one spelling) at a ref: the
    revision the URL names (a commit SHA, ``HEAD``, ``main`` or ``master``), else
    ``ref`` given apart (the API's ``ref``, the CLI's ``--ref``; both: the same), else
    ``HEAD``. The first of two or three segments is the user when the second is an id
    (a user's name may look like an old, numeric gist id)."""
    segments = [s.removesuffix(".git") if i < 2 else s for i, s in enumerate(segments)]
    if len(segments) >= 2 and _GIST_USER.match(segments[0]) and _GIST_ID.match(segments[1]):
        segments = segments[1:]
    if not segments or not _GIST_ID.match(segments[0]) or len(segments) > 2:
        raise InvalidRequest("a gist is https://gist.github.com/<user>/<id>[/<revision>]")
    if len(segments) == 2:
        if not (_SHA.match(segments[1]) or segments[1] in _GIST_HEADS):
            raise InvalidRequest("a gist's revision is its 40-digit commit SHA or HEAD")
        if ref is not None and ref != segments[1]:
            raise InvalidRequest(
                f"the gist's URL names revision {segments[1]}: give no ref, or that one"
            )
        ref = segments[1]
    return GitSource(repo_spec(f"https://{GIST_HOST}/{segments[0]}", ref or "HEAD"))
