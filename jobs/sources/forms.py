"""Anything a user gives for content (a spec, a pasted URL, a DOI, a SWHID) turned into
a source: ``parse_source`` (issue 25). Pure functions, no I/O.

The table of forms is docs/design-providers.md's ("Forms users give"); each form has a
golden test in tests/unit/test_source_forms.py. Nothing is guessed: a string in none of
the forms is refused with an ``InvalidRequest`` naming them.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import SplitResult, unquote, urlsplit

from ..errors import InvalidRequest
from .forge_urls import forge_page
from .hg import hg_source, is_hg_url, with_ref
from .record_urls import (
    FIGSHARE_HOSTS,
    GIST_HOST,
    HYDROSHARE_HOSTS,
    ZENODO_HOSTS,
    ckan_page,
    dataverse_page,
    doi_record,
    figshare_page,
    gist_page,
    hydroshare_page,
    zenodo_page,
)
from .records import DoiSource, GitSource, RecordSource, Source, check_doi, check_swhid
from .specs import repo_spec
from .urls import MAX_REPO_LENGTH, canonical_host

DOI_RESOLVERS = frozenset({"doi.org", "dx.doi.org", "www.doi.org"})
_SWHID_LIKE = re.compile(r"^swh:[0-9]+:")
_DOI_LIKE = re.compile(r"^10\.[0-9.]*(?:/|$)")
"""What is taken for a DOI (and checked as one): ``10.``, digits and dots, then ``/`` or
the end. ``10.0.0.5:team/repo`` (an SCP-like address of a host by IP) is not, nor are
``swh:team/repo`` and ``doi:team/repo`` (hosts named ``swh`` and ``doi``)."""


def doi_source(doi: str) -> RecordSource | DoiSource:
    """A checked DOI (without prefix) as the record it names when its registrant's form
    is known (Zenodo, Figshare), else as a ``DoiSource`` to follow."""
    canonical = check_doi(unquote(doi))
    return doi_record(canonical) or DoiSource(canonical)


def _http_url(text: str) -> tuple[SplitResult, str] | None:
    """``text`` split as an http(s) URL with its canonical host; None when it is no
    http(s) URL (an ssh or git URL, a shortcut) or one that ``repo_spec`` should refuse
    with its own words (credentials, a bad port or host)."""
    if not text.lower().startswith(("https://", "http://")):
        return None
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        port = parts.port
        host = canonical_host(hostname or "")
    except (ValueError, InvalidRequest):
        return None
    if not hostname or parts.username is not None or parts.password is not None:
        return None
    if port not in (None, 80, 443):
        host = f"{host}:{port}"
    return parts, host


def _record_page(parts: SplitResult, host: str, ref: str | None = None) -> Source | None:
    """The source of a record page or DOI link, or None when the URL is no such page;
    ``ref`` (given apart) is a gist's (``gist_page``), the only page that takes one."""
    segments = [s for s in parts.path.split("/") if s]
    if host in DOI_RESOLVERS:
        return doi_source(parts.path.lstrip("/"))
    if host in ZENODO_HOSTS:
        return zenodo_page(host, segments)
    if FIGSHARE_HOSTS.match(host):
        return figshare_page(parts.path)
    if host in HYDROSHARE_HOSTS:
        return hydroshare_page(host, segments)
    if host == GIST_HOST:
        return gist_page(segments, ref)
    if parts.path.rstrip("/") in ("/dataset.xhtml", "/citation") and parts.query:
        return dataverse_page(host, parts.query)
    return ckan_page(host, parts.path, parts.query, on_forge=False)


@functools.lru_cache(maxsize=4096)
def parse_source(
    text: str,
    *,
    ref: str | None = None,
    allow_file: bool = False,
) -> Source:
    """What a user gave (``text``, and a ``ref`` given apart) as a source. Pure and
    cached (refusals are not).

    - ``swh:1:…``: a SWHID (``RecordSource`` of ``swh``);
    - ``hg+https://<host>/<path>[@<ref>]``: a Mercurial repository (``RecordSource`` of
      ``hg``, its ``version`` the ref: the one given, the URL's or ``default``);
    - ``ckan:<URL>``: a CKAN dataset on the URL's host (``ckan_source``);
    - ``10.…``, ``doi:10.…``, a doi.org link: a DOI (``doi_source``);
    - ``gh/…``, ``gl/…`` shortcuts, ssh/git/scp-like URLs: git (``repo_spec``);
    - an http(s) URL: a record page (Zenodo, Figshare, Dataverse, HydroShare, gist;
      a CKAN dataset's page, ``[<prefix>]/dataset/<name>[/history/<activity>]``, on
      any host but a public git forge's: ``record_urls.ckan_page``), a forge page (tree,
      blob, commit, tag, pull request) or else a clone URL (so a git repository whose
      URL ends ``/dataset/<name>`` on another host is given with ``.git`` at its end).

    A git source's ref is ``ref``, or the one its URL names, or ``HEAD``; a ``ref`` that
    differs from the one the URL names, or given with a record, is refused. Raises
    ``InvalidRequest`` naming the form expected.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("give a repository URL, a record URL, a DOI or a SWHID")
    text = text.strip()
    if len(text) > MAX_REPO_LENGTH:
        raise InvalidRequest(f"repo is longer than {MAX_REPO_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise InvalidRequest("repo must not contain spaces or control characters")
    if is_hg_url(text):  # its ref may be given apart, as git's is
        return with_ref(hg_source(text), ref)
    source = _parse(text, ref)
    if source is None:
        return GitSource(repo_spec(text, ref, allow_file=allow_file))
    if ref is not None and not (isinstance(source, GitSource) and source.spec.ref == ref):
        hint = ""
        if isinstance(source, RecordSource) and source.provider == "ckan":
            hint = " (it reads as a CKAN dataset; a git repository there ends in .git)"
        raise InvalidRequest(
            f"{text[:100]} names its content itself: give no ref, or the one it names{hint}"
        )
    return source


CKAN_PREFIX = "ckan:"
"""``ckan:<dataset URL>``: a CKAN dataset (the stream's ``ckan/<escaped URL>``,
``jobs.sources.providers``), on any host, a git forge's too."""


def ckan_source(url: str) -> RecordSource:
    """The CKAN dataset a URL of its page names (``https://<host>[/<prefix>]/dataset/
    <name>[/history/<activity>]``); ``InvalidRequest`` naming the form otherwise."""
    split = _http_url(url)
    if split is not None:
        found = ckan_page(split[1], split[0].path, split[0].query)
        if found is not None:
            return found
    raise InvalidRequest(
        f"{url[:100]!r} is no CKAN dataset: give https://<host>/dataset/<name>"
        "[/history/<activity id>]"
    )


def _parse(text: str, ref: str | None = None) -> Source | None:
    """The source ``text`` names by a form of its own; None for a repository URL (or
    shortcut) to be read by ``repo_spec``. ``ref``: given apart, for a gist."""
    lowered = text.lower()
    if _SWHID_LIKE.match(lowered):
        return RecordSource("swh", "archive.softwareheritage.org", check_swhid(text))
    if lowered.startswith("doi:10."):
        return doi_source(text[4:])
    if lowered.startswith(CKAN_PREFIX):
        return ckan_source(text[len(CKAN_PREFIX) :])
    if _DOI_LIKE.match(text):
        return doi_source(text)
    split = _http_url(text)
    if split is None:
        return None
    parts, host = split
    record = _record_page(parts, host, ref)
    if record is not None or parts.query or parts.fragment:
        return record
    segments = [s for s in parts.path.split("/") if s]
    base = f"{parts.scheme.lower()}://{host}"
    return forge_page(base, segments, github=host in ("github.com", "www.github.com"))
