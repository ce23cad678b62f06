"""The names derived from a repository and a commit, or from a record version (issue
25). Pure functions, no I/O.

The image name is the identity of a build: the dedupe key, the cache key and,
shortened by ``build_name_for``, the name of the build (the Kubernetes Job's).
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import urlsplit

from .errors import InvalidRequest
from .sources.records import RecordVersion
from .sources.specs import SHA_RE

MAX_IMAGE_NAME_LENGTH = 255  # the registry's limit for a repository name
MAX_BUILD_NAME_LENGTH = 63  # a DNS label: Kubernetes object names, pod host names

_SLUG_DROP = re.compile(r"[^a-z0-9]+")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""A Docker tag (the distribution spec's grammar)."""


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


def version_tag(provider: str, version: str) -> str:
    """The image tag of a record's version: the version itself (``3242075``), ``v``
    and the number for Figshare and Dataverse (``v2``, ``v3.0``), a SWHID's type and
    hash (``dir-<40 hex>``); a version that is no Docker tag becomes its slug, cut, and
    12 hex digits of its hash, so distinct versions keep distinct tags."""
    if provider in ("figshare", "dataverse"):
        tag = f"v{version}"
    elif provider == "swh":
        tag = version.removeprefix("swh:1:").replace(":", "-")
    else:
        tag = version
    if _TAG.match(tag):
        return tag
    readable = _slugify(tag)[:115].strip("-")
    return f"{readable}-{_hash(tag, 12)}" if readable else _hash(tag, 12)


def record_slug(provider: str, host: str, record: str, max_length: int = 96) -> str:
    """A registry-safe, readable, collision-safe slug for a record across its versions:
    ``zenodo-zenodo-org-3242074-<8 hex>``; the hash covers provider, host and record."""
    digest = _hash(f"{provider} {host} {record}", 8)
    room = max(max_length - len(digest) - 1, 0)
    readable = _slugify(f"{provider}-{host}-{record}")[:room].rstrip("-")
    return f"{readable}-{digest}" if readable else digest


def image_name_for_record(prefix: str, version: RecordVersion) -> str:
    """``<prefix><record slug>:<version tag>``: every version of a record in one image
    repository, each under its own tag, within the registry's 255-character limit."""
    room = MAX_IMAGE_NAME_LENGTH - len(prefix)
    if room < 9:
        raise InvalidRequest("image_prefix is too long to leave room for a record slug")
    slug = record_slug(version.provider, version.host, version.record, min(room, 96))
    return f"{prefix}{slug}:{version_tag(version.provider, version.version)}"


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
