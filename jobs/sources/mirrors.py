"""Where a repository is fetched from: the ``mirrors`` setting's rewriting of URL
prefixes (issue 23). A repository asked for as ``https://github.com/org/repo`` may be
fetched from GitHub Enterprise, an internal mirror or an air-gapped copy; its identity
(the canonical URL, the image's name, the records, ``allowed_repos``) stays the URL asked
for, and only what reaches a repository changes: ``git ls-remote``, the clone, the git
credential chosen for it and the forge whose API is asked. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

MIRROR_SCHEMES = ("https", "http", "git", "ssh", "file")


@dataclass(frozen=True)
class Mirror:
    """Repositories whose canonical URL starts with ``prefix`` (whole path segments:
    ``https://github.com/org`` covers ``https://github.com/org/repo``, not
    ``https://github.com/organisation``) are fetched from ``url`` followed by the rest of
    their path."""

    prefix: str
    url: str


def check_mirror_url(value: str, *, what: str) -> str:
    """``value`` without a trailing ``/``, when it is a URL with a scheme git fetches
    from and a host (``file:///path`` needs none), no credentials, query or fragment.
    Raises ValueError naming ``what`` otherwise."""
    parts = urlsplit(value.strip())
    if parts.scheme not in MIRROR_SCHEMES:
        raise ValueError(
            f"{what} must be a URL with one of the schemes {', '.join(MIRROR_SCHEMES)}"
        )
    if parts.scheme != "file" and not parts.hostname:
        raise ValueError(f"{what} must name a host")
    if parts.password or parts.query or parts.fragment:
        raise ValueError(f"{what} must not carry a password, a query or a fragment")
    if parts.username and parts.scheme != "ssh":
        raise ValueError(f"{what} may carry a user name only with ssh://")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError(f"{what} has a port that is not a number") from None
    return value.strip().rstrip("/")


def fetch_url(repo: str, mirrors: Iterable[Mirror]) -> str:
    """The URL ``repo`` (canonical) is fetched from: the longest ``prefix`` that covers
    it, replaced by its ``url``; ``repo`` itself when none does."""
    best: Mirror | None = None
    for mirror in mirrors:
        prefix = mirror.prefix.rstrip("/")
        if (repo == prefix or repo.startswith(prefix + "/")) and (
            best is None or len(prefix) > len(best.prefix.rstrip("/"))
        ):
            best = mirror
    if best is None:
        return repo
    return best.url.rstrip("/") + repo[len(best.prefix.rstrip("/")) :]
