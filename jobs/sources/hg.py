"""Mercurial repositories (issue 25): the form users give (``hg+https://<host>/<path>
[@<ref>]``, pip's spelling of a VCS URL) and the version a changeset id makes. Pure;
``jobs.sources.hg_identify`` asks the repository's server which changeset a ref names,
as git's refs are resolved to a commit. repo2docker's own ``Mercurial`` content
provider then clones that changeset (handed as its ``--ref``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..errors import InvalidRequest
from .records import RecordSource, RecordVersion

SCHEMES = ("hg+https://", "hg+http://")
HG_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}$")
"""A ref given with a Mercurial URL: a branch, bookmark, tag or changeset id. Never an
option (no leading ``-``) and never a revset (no spaces, quotes or parentheses)."""
CHANGESET_RE = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_REF = "default"
"""The ref of a URL that names none: the head of the ``default`` branch (what a clone
checks out)."""


def is_hg_url(text: str) -> bool:
    """Whether ``text`` is in the Mercurial form (``hg+http(s)://``). Pure."""
    return text.lower().startswith(SCHEMES)


def hg_source(text: str) -> RecordSource:
    """``hg+https://<host>/<path>[@<ref>]`` as a ``RecordSource`` of ``hg``: ``host``,
    ``record`` the repository's URL without ``hg+`` and ref, ``version`` the ref or None.
    Raises ``InvalidRequest`` naming the form. Pure."""
    url = text[3:]
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    ref = None
    if "@" in path:
        path, _, ref = path.rpartition("@")
    form = "a Mercurial repository is hg+https://<host>/<path>[@<branch, tag or changeset>]"
    if "@" in authority:  # never echoed: it may hold a password
        raise InvalidRequest(f"a Mercurial URL must hold no user name or password: {form}")
    try:
        parts = urlsplit(f"{scheme.lower()}://{authority}/{path}")
        port = parts.port
    except ValueError:
        raise InvalidRequest(f"{text[:100]!r} is not a Mercurial URL: {form}") from None
    if (
        not parts.hostname
        or parts.query
        or parts.fragment
        or not slash
        or (ref is not None and not HG_REF_RE.match(ref))
    ):
        raise InvalidRequest(f"{text[:100]!r} is not a Mercurial URL: {form}")
    host = parts.hostname.lower() + (f":{port}" if port not in (None, 80, 443) else "")
    return RecordSource("hg", host, f"{parts.scheme}://{host}/{path}", ref)


def with_ref(source: RecordSource, ref: str | None) -> RecordSource:
    """``source`` with the ref given apart from its URL (``ref``), or ``DEFAULT_REF``;
    ``InvalidRequest`` when both name one and they differ. Pure."""
    if ref is not None and not HG_REF_RE.match(ref):
        raise InvalidRequest(f"{ref[:100]!r} is no Mercurial branch, tag or changeset id")
    if ref is not None and source.version not in (None, ref):
        raise InvalidRequest(f"{source.record}@{source.version} names its ref: give no other")
    return RecordSource("hg", source.host, source.record, source.version or ref or DEFAULT_REF)


def hg_version(source: RecordSource, changeset: str) -> RecordVersion:
    """The version of ``source`` its server named (``changeset``, 40 hex digits): it
    moves unless the ref asked was that changeset. Pure."""
    return RecordVersion(
        provider="hg",
        host=source.host,
        record=source.record,
        version=changeset,
        content=source.record,
        total_size=None,
        moves=source.version != changeset,
    )
