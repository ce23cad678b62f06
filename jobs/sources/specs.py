"""Repositories, refs and the names derived from them. Pure functions, no I/O.

The image name is the identity of a build: the dedupe key, the cache key and,
shortened by ``build_name_for``, the name of the build (later the Kubernetes Job).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import InvalidRequest
from .urls import canonical_repo_url as canonical_repo_url

MAX_REF_LENGTH = 255
MAX_IMAGE_NAME_LENGTH = 255  # the registry's limit for a repository name
MAX_BUILD_NAME_LENGTH = 63  # a DNS label: Kubernetes object names, pod host names

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_FORBIDDEN_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")


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


def _hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _slugify(text: str) -> str:
    return _SLUG_DROP.sub("-", text.lower()).strip("-")


def repo_slug(url: str, max_length: int = 96) -> str:
    """A registry-safe, readable, collision-safe slug for a canonical repo URL.

    ``https://github.com/Owner/Repo`` -> ``github-com-owner-repo-<8 hex>``. The hash
    covers the whole canonical URL, so repos whose readable parts collide (case,
    punctuation, truncation) still get different slugs.
    """
    parts = urlsplit(url)
    readable = _slugify(f"{parts.hostname or ''}/{parts.path}")
    digest = _hash(url, 8)
    room = max(max_length - len(digest) - 1, 0)
    readable = readable[:room].rstrip("-")
    return f"{readable}-{digest}" if readable else digest


@functools.lru_cache(maxsize=4096)
def image_name_for(prefix: str, url: str, sha: str) -> str:
    """``<prefix><slug>:<sha>``, within the registry's 255-character name limit."""
    if not SHA_RE.match(sha):
        raise InvalidRequest("an image is named after a full 40-character commit SHA")
    room = MAX_IMAGE_NAME_LENGTH - len(prefix)
    if room < 9:
        raise InvalidRequest("image_prefix is too long to leave room for a repository slug")
    return f"{prefix}{repo_slug(url, max_length=min(room, 96))}:{sha}"


def build_name_for(image: str) -> str:
    """The build's short name (the Kubernetes Job name): a DNS label of at most 63.

    ``r2d-<readable repo part>-<sha[:7]>-<hash of the whole image name>``. The hash
    (12 hex digits) makes names of different images differ even when everything
    readable is cut away.
    """
    name, _, tag = image.rpartition(":")
    last = name.rsplit("/", 1)[-1]
    readable_repo = _slugify(last)
    # drop the repo slug's own hash suffix: the image hash below covers it
    readable_repo = re.sub(r"-[0-9a-f]{8}$", "", readable_repo)
    suffix = f"-{_slugify(tag)[:7]}-{_hash(image, 12)}"
    room = MAX_BUILD_NAME_LENGTH - len("r2d-") - len(suffix)
    readable_repo = readable_repo[:room].strip("-") or "repo"
    return f"r2d-{readable_repo}{suffix}"
