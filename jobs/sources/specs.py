"""What a user asks for (a repository and a ref, checked) and what a ref resolves to.
Pure functions, no I/O.

``repo_spec`` turns what was typed (a URL or a ``gh/``/``gl/`` shortcut, a ref) into a
``RepoSpec`` whose URL is canonical (``jobs.sources.urls``) and whose ref git would
accept; ``jobs.sources.refs`` resolves the ref to a ``ResolvedRef`` (a commit); the
names derived from both are ``jobs.naming``'s.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from ..errors import InvalidRequest
from .urls import canonical_repo_url

MAX_REF_LENGTH = 255

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_ABBREVIATED_SHA_MIN = 7
_FORBIDDEN_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


@dataclass(frozen=True)
class RepoSpec:
    """What the user asked for: a canonical clone URL and a ref (branch, tag, SHA)."""

    url: str
    ref: str


def check_ref(ref: str) -> str:
    """Refuse refs that git would refuse or that could be taken for options."""
    if not isinstance(ref, str) or not ref:
        raise InvalidRequest("ref must be a non-empty string")
    if len(ref) > MAX_REF_LENGTH:
        raise InvalidRequest(f"ref is longer than {MAX_REF_LENGTH} characters")
    if ref.startswith("-"):
        raise InvalidRequest("ref must not start with '-'")
    if _FORBIDDEN_REF_CHARS.search(ref):
        raise InvalidRequest("ref must not contain spaces, control characters or ~^:?*[\\")
    if ".." in ref or "@{" in ref or "//" in ref:
        raise InvalidRequest("ref must not contain '..', '@{' or '//'")
    if ref.startswith("/") or ref.endswith(("/", ".", ".lock")):
        raise InvalidRequest("ref must not start with '/' or end with '/', '.' or '.lock'")
    return ref


def parse_shortcut(spec: str) -> RepoSpec:
    """``gh/<owner>/<repo>/<ref>`` and ``gl/<namespace...>/<project>/<ref>`` to a RepoSpec.

    The ref is the last path segment, as in BinderHub's specs; refs with slashes are
    given URL-escaped (``%2F``).
    """
    provider, _, rest = spec.partition("/")
    parts = rest.split("/")
    if provider == "gh":
        if len(parts) != 3 or not all(parts):
            raise InvalidRequest("a gh/ spec is gh/<owner>/<repo>/<ref>")
        return RepoSpec(f"https://github.com/{parts[0]}/{parts[1]}", unquote(parts[2]))
    if provider == "gl":
        if len(parts) < 3 or not all(parts):
            raise InvalidRequest("a gl/ spec is gl/<namespace>/<project>/<ref>")
        return RepoSpec(f"https://gitlab.com/{'/'.join(parts[:-1])}", unquote(parts[-1]))
    raise InvalidRequest(f"unknown repo shortcut {provider!r}; use gh/ or gl/ or a URL")


@functools.lru_cache(maxsize=4096)
def repo_spec(repo: str, ref: str | None, *, allow_file: bool = False) -> RepoSpec:
    """Turn what a user typed (URL or shortcut, optional ref) into a checked RepoSpec.

    Pure and cached: the same request (a cache hit, asked again and again) is checked
    once. Invalid input raises every time (exceptions are not cached).
    """
    if isinstance(repo, str) and repo.startswith(("gh/", "gl/")):
        shortcut = parse_shortcut(repo)
        if ref is not None and ref != shortcut.ref:
            raise InvalidRequest("give the ref either in the shortcut or as ref, not both")
        repo, ref = shortcut.url, shortcut.ref
    url = canonical_repo_url(repo, allow_file=allow_file)
    return RepoSpec(url, check_ref("HEAD" if ref is None else ref))


RefKind = Literal["branch", "tag", "commit", "head", "other", "record"]


@dataclass(frozen=True)
class ResolvedRef:
    """What a ref resolved to: a commit, and which kind of ref named it."""

    sha: str
    kind: RefKind
    """``branch`` and ``head`` move; the queue supersedes older builds of them."""
    full_ref: str
    """``refs/heads/main``, ``refs/tags/v1``, ``HEAD``, or the SHA itself."""


def looks_like_abbreviated_sha(ref: str) -> bool:
    """Whether ``ref`` could be an abbreviated commit SHA: 7 to 39 lower-case hex
    digits (git's shortest default abbreviation; 40 is a full SHA). Pure."""
    return _ABBREVIATED_SHA_MIN <= len(ref) < 40 and all(c in "0123456789abcdef" for c in ref)
