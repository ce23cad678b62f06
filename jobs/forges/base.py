"""What every forge client offers, and the pieces they share.

Clients are synchronous (PyGithub and python-gitlab are); the pipeline calls them with
``asyncio.to_thread``. Each operation (a resolution, a status, a hook) opens its own
library client and closes it: neither library promises that a client may be shared
by threads, and a client kept for later would hold sockets nobody closes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ..sources.specs import RefKind, ResolvedRef, looks_like_abbreviated_sha

StatusState = Literal["pending", "running", "success", "failure", "cancelled"]
DESCRIPTION_LIMIT = 140
"""GitHub refuses longer status descriptions; GitLab shows them cut anyway."""


@dataclass(frozen=True)
class CommitStatus:
    """A status for one commit, in our words; each client maps ``state`` to its own."""

    state: StatusState
    description: str
    context: str
    target_url: str | None = None
    ref: str | None = None
    """The branch or tag name the build was for (GitLab shows it), if any."""

    def short_description(self) -> str:
        text = " ".join(self.description.split())
        if len(text) <= DESCRIPTION_LIMIT:
            return text
        return text[: DESCRIPTION_LIMIT - 1] + "…"


@dataclass(frozen=True)
class HookChange:
    """What ``install_hook`` did: ``created`` or ``updated`` hook ``id``."""

    action: Literal["created", "updated"]
    id: int
    url: str


class RefMissing(Exception):
    """The repository is there and has no such branch, tag or commit."""


@dataclass(frozen=True)
class RefLookups:
    """One forge's answers about one project, for ``resolve_ref``. Each lookup returns
    a commit's 40 hex digits, or None when the forge has no such thing (404); each may
    raise ForgeRateLimited or ForgeUnavailable."""

    default_branch: Callable[[], str | None]
    """The default branch's name; None when the project is not visible (to the token)."""
    branch: Callable[[str], str | None]
    tag: Callable[[str], str | None]
    """The commit a tag names (peeled: an annotated tag's commit, not the tag object)."""
    commit: Callable[[str], str | None]
    """The commit an abbreviated SHA names."""


def resolve_ref(lookups: RefLookups, ref: str) -> ResolvedRef | None:
    """The commit ``ref`` names, by the forges' shared rules (those of ``git ls-remote``
    resolution: ``HEAD`` is the default branch; a full ``refs/heads/``/``refs/tags/``
    name is that branch or tag; a short name is a branch, else a tag, else an
    abbreviated SHA). None when the API cannot tell (the project is not visible, a
    ``refs/`` name of another kind): git answers instead. Raises RefMissing when the
    project is visible and has no such ref, and what the lookups raise.
    """
    if ref == "HEAD":
        default = lookups.default_branch()
        sha = None if default is None else lookups.branch(default)
        return None if sha is None else ResolvedRef(sha, "head", "HEAD")
    full: tuple[tuple[str, Callable[[str], str | None], RefKind], ...] = (
        ("refs/heads/", lookups.branch, "branch"),
        ("refs/tags/", lookups.tag, "tag"),
    )
    for prefix, lookup, kind in full:
        if ref.startswith(prefix):
            sha = lookup(ref[len(prefix) :])
            if sha is not None:
                return ResolvedRef(sha, kind, ref)
            _raise_if_visible(lookups)
            return None
    if ref.startswith("refs/"):
        return None  # pull and merge request refs and the like: git knows them
    sha = lookups.branch(ref)
    if sha is not None:
        return ResolvedRef(sha, "branch", f"refs/heads/{ref}")
    sha = lookups.tag(ref)
    if sha is not None:
        return ResolvedRef(sha, "tag", f"refs/tags/{ref}")
    if looks_like_abbreviated_sha(ref):
        sha = lookups.commit(ref)
        if sha is not None and sha.startswith(ref):
            return ResolvedRef(sha, "commit", sha)
    _raise_if_visible(lookups)
    return None


def _raise_if_visible(lookups: RefLookups) -> None:
    """Raise RefMissing if the project is visible (so the ref is what is missing)."""
    if lookups.default_branch() is not None:
        raise RefMissing()


class ForgeClient(Protocol):
    kind: str
    """``github`` or ``gitlab``; the ``forge`` label of the metrics."""

    def resolve(self, project: str, ref: str) -> ResolvedRef | None:
        """The commit ``ref`` names in ``project`` (``owner/repo``). None when the API
        cannot tell (the project is not visible to the token, an unusual ref): git
        answers instead. Raises RefNotFound, ForgeRateLimited, ForgeUnavailable."""
        ...

    def set_status(self, project: str, sha: str, status: CommitStatus) -> None:
        """Raises ForgeRateLimited or ForgeUnavailable."""
        ...

    def install_hook(self, project: str, url: str, secret: str) -> HookChange:
        """Create the push webhook pointing at ``url``, or update the one that does."""
        ...


class ETagCache:
    """Answers by request, with their ``ETag``, so that asking again is a conditional
    request: GitHub does not count a ``304 Not Modified`` against the rate limit.
    Bounded (least recently used goes first) and shared by the threads of a client."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, str] | None:
        """``(etag, value)`` remembered for ``key``."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, etag: str | None, value: str) -> None:
        if not etag:
            return
        with self._lock:
            self._items[key] = (etag, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
