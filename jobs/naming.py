"""The names derived from a repository and a commit. Pure functions, no I/O.

The image name is the identity of a build: the dedupe key, the cache key and,
shortened by ``build_name_for``, the name of the build (the Kubernetes Job's).
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import urlsplit

from .errors import InvalidRequest
from .sources.specs import SHA_RE

MAX_IMAGE_NAME_LENGTH = 255  # the registry's limit for a repository name
MAX_BUILD_NAME_LENGTH = 63  # a DNS label: Kubernetes object names, pod host names

_SLUG_DROP = re.compile(r"[^a-z0-9]+")


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
