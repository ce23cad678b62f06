"""Patterns of repository URLs: who may build (``allowed_repos``) and which credential
covers a repository (``forges.credentials``, ``forges.hosts``). Pure functions, no I/O.

- ``allowed_repos`` patterns are shell-style (``fnmatch``) and spelt as canonical URLs
  are (``jobs.sources.urls``), so that a pattern and the URLs it admits agree.
- ``allowed_repos`` patterns of records (issue 25) name a provider or a DOI instead:
  ``zenodo:*``, ``zenodo:zenodo.org/3242074``, ``dataverse:dataverse.harvard.edu/*``,
  ``doi:10.5281/*``; they are matched against a record's keys
  (``jobs.sources.records.record_keys``) and kept as written.
- ``UrlPattern`` is a URL prefix matched the way git matches ``http.<url>.*`` settings
  (scheme, host with ``*`` for one name label, port, whole path segments), so that
  Python and git pick the same credential for a repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from ..errors import InvalidRequest
from .urls import CASE_INSENSITIVE_HOSTS, DEFAULT_PORTS, ESCAPE, SCP_LIKE, UNRESERVED

_CREDENTIAL_PORTS = {"http": 80, "https": 443}

RECORD_PATTERN = re.compile(r"^(?:zenodo|figshare|dataverse|hydroshare|ckan|swh|hg|doi):(?!//)")
"""An ``allowed_repos`` pattern of records (a provider's name or ``doi``, then ``:``).
Such a pattern is never read as an SCP-like git address (a git host named ``zenodo``
is given as ``ssh://zenodo/...`` in a pattern)."""


def _split(url: str) -> tuple[str, str] | None:
    """``scheme://authority`` and the path (from its ``/``), or None without ``://``."""
    start = url.find("://")
    if start < 0:
        return None
    slash = url.find("/", start + 3)
    return (url, "") if slash < 0 else (url[:slash], url[slash:])


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match["hex"], 16))
    return char if char in UNRESERVED else match[0].upper()


def canonical_pattern(pattern: str) -> str:
    """An ``allowed_repos`` pattern spelled as canonical URLs are.

    For a pattern with ``scheme://``: scheme and host lower case, default port
    dropped, escapes of unreserved characters decoded (others upper case), ``.`` and
    empty segments removed, no trailing ``/`` or ``.git``, the path lower case on
    ``CASE_INSENSITIVE_HOSTS``. Wildcards are left alone. SCP-like patterns become
    ``ssh://``; other patterns (``*``) are kept as they are. Raises
    ``InvalidRequest`` for a pattern with a scheme but no path, which no URL matches.
    A pattern of records (``RECORD_PATTERN``) is kept as it is.
    """
    if RECORD_PATTERN.match(pattern):
        return pattern
    scp = SCP_LIKE.match(pattern)
    if "://" not in pattern and scp:
        pattern = f"ssh://{scp['user'] or ''}{scp['host']}/{scp['path']}"
    split = _split(pattern)
    if split is None:
        return pattern
    head, path = split
    if not path.strip("/"):
        raise InvalidRequest(f"pattern {pattern!r} needs a path, e.g. https://host/*")
    scheme, _, authority = head.lower().partition("://")
    if scheme in DEFAULT_PORTS:
        authority = re.sub(rf":0*{DEFAULT_PORTS[scheme]}$", "", authority)
    hostname = authority.rpartition("@")[2]
    segments = [ESCAPE.sub(_unescape_unreserved, s) for s in path.split("/")]
    segments = [s for s in segments if s not in ("", ".")]
    if hostname in CASE_INSENSITIVE_HOSTS:
        segments = [s.lower() for s in segments]
    while segments and segments[-1].endswith(".git"):
        last = segments.pop()[: -len(".git")]
        if last not in ("", "."):
            segments.append(last)
    return f"{scheme}://{authority}/" + "/".join(segments)


def url_matches(url: str, pattern: str) -> bool:
    """Whether the canonical ``url`` matches an ``allowed_repos`` ``pattern``.

    Shell-style (``fnmatch``, case-sensitive): ``*`` matches any characters, ``/``
    included, so ``https://host/group/*`` admits ``https://host/group/sub/repo``. In a
    pattern with ``scheme://``, the scheme and host part is matched against the URL's
    alone: a wildcard there never reaches into the path (``https://*.example.org/*``
    does not admit ``https://evil.test/x.example.org/y``).
    """
    pattern_parts = _split(pattern)
    url_parts = _split(url)
    if pattern_parts is None or url_parts is None:
        return fnmatchcase(url, pattern)
    return fnmatchcase(url_parts[0], pattern_parts[0]) and fnmatchcase(
        url_parts[1], pattern_parts[1]
    )


@dataclass(frozen=True)
class UrlPattern:
    scheme: str
    host: str
    """Lower case; a label may be ``*``."""
    port: int
    path: str
    """Without a trailing ``/``; empty for the whole host."""

    @classmethod
    def parse(cls, text: str) -> UrlPattern:
        """Raises ValueError naming what is wrong with ``text``."""
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _CREDENTIAL_PORTS:
            raise ValueError("must be an http:// or https:// URL prefix")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials (set username and password)")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        host = (parts.hostname or "").lower()
        if not host or any(not label for label in host.split(".")):
            raise ValueError("has no host")
        if any("*" in label and label != "*" for label in host.split(".")):
            raise ValueError("'*' must stand for a whole host name label, as in *.example.org")
        try:
            port = parts.port or _CREDENTIAL_PORTS[scheme]
        except ValueError as e:
            raise ValueError(f"has an invalid port: {e}") from None
        path = parts.path.rstrip("/")
        if ".." in path.split("/"):
            raise ValueError("path must not contain '..'")
        return cls(scheme, host, port, path)

    def matches(self, url: str) -> bool:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != self.scheme:
            return False
        host = (parts.hostname or "").lower()
        mine, theirs = self.host.split("."), host.split(".")
        if len(mine) != len(theirs) or any(
            a != "*" and a != b for a, b in zip(mine, theirs, strict=True)
        ):
            return False
        try:
            port = parts.port or _CREDENTIAL_PORTS.get(scheme)
        except ValueError:
            return False
        if port != self.port:
            return False
        path = parts.path.rstrip("/")
        return path == self.path or path.startswith(f"{self.path}/")

    @property
    def specificity(self) -> tuple[int, int]:
        """Git's order of preference: the longer host text, then the longer path."""
        return (len(self.host), len(self.path))

    @property
    def git_url(self) -> str:
        default = _CREDENTIAL_PORTS[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}"
