"""The typed requests the pipeline receives from the HTTP API, the BinderHub stream
and the CLI (a push is ``jobs.coordinator.push.PushRequest``). Pure: checking one raises
``InvalidRequest`` naming the problem and touches nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..model import Build, BuildState
from ..sources.providers import stream_request
from ..sources.urls import canonical_repo_url

BUILD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
"""What a build id looks like."""

_LIMIT_RE = re.compile(r"\A[0-9]{1,3}\Z")

DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True)
class BuildRequest:
    """Build ``repo`` at ``ref`` (the default branch when None) unless its image exists."""

    repo: str
    ref: str | None = None
    trigger: str = "api"
    """Who asked, as recorded on the build: ``api``, ``binderhub``, ``cli``."""
    force: bool = False
    """Build even when the commit's last build failed because of the commit."""
    requester: str | None = None
    """Who asked, by name, held to ``settings.quotas``; None: no quota applies."""


def body_request(
    *,
    repo: str | None = None,
    ref: str | None = None,
    provider: str | None = None,
    spec: str | None = None,
) -> tuple[str, str | None]:
    """What a build request's body asks for, as a ``BuildRequest``'s ``repo`` and
    ``ref``: ``repo`` (and ``ref``) as given, or BinderHub's ``provider`` and ``spec``
    (``{"provider": "zenodo", "spec": "10.5281/zenodo.3242074"}``,
    ``{"provider": "gh", "spec": "org/repo/ref"}``) mapped exactly as the stream maps
    ``/build/<provider>/<spec>`` (``jobs.sources.providers.stream_request``). Pure.

    Raises ``InvalidRequest`` for both forms at once, half of the second, a ``ref``
    beside a spec (the spec holds the ref), no form, or a spec its provider does not
    take (naming the form); ``UnknownProvider`` (404) naming the providers offered."""
    if provider is None and spec is None:
        if repo is None:
            raise InvalidRequest("missing field: repo (or provider and spec)")
        return repo, ref
    if repo is not None:
        raise InvalidRequest(
            "give either repo (with ref) or provider and spec, not both: "
            f"repo {repo!r} conflicts with provider and spec"
        )
    if ref is not None:
        raise InvalidRequest(
            "give no ref with provider and spec: the spec names the ref "
            "(e.g. gh/<owner>/<repo>/<ref>) or the record's version"
        )
    if provider is None:
        raise InvalidRequest("missing field: provider (spec is given)")
    if spec is None:
        raise InvalidRequest(f"missing field: spec (provider {provider!r} is given)")
    return stream_request(provider, spec)


@dataclass(frozen=True)
class BuildQuery:
    """A page of builds, newest first: ``limit`` of them, older than build ``cursor``."""

    repo: str | None = None
    """Canonical repository URL; None: every repository."""
    state: BuildState | None = None
    limit: int = DEFAULT_PAGE
    cursor: str | None = None


@dataclass(frozen=True)
class BuildPage:
    builds: tuple[Build, ...]
    next_cursor: str | None
    """The cursor of the next page; None on the last one."""


def build_query(
    *,
    repo: str | None = None,
    state: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
    allow_file: bool = False,
) -> BuildQuery:
    """A ``BuildQuery`` from its text form (query parameters). Raises ``InvalidRequest``
    naming the first bad field. Whether ``cursor`` names a stored build is checked by
    ``BuildService.list_builds``."""
    if repo is not None:
        repo = canonical_repo_url(repo, allow_file=allow_file)
    states = {str(s) for s in BuildState}
    if state is not None and state not in states:
        raise InvalidRequest(f"state must be one of {', '.join(str(s) for s in BuildState)}")
    limit_text = str(DEFAULT_PAGE) if limit is None else limit
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not _LIMIT_RE.match(limit_text) or not 1 <= int(limit_text) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    if cursor is not None and not BUILD_ID_RE.match(cursor):
        raise InvalidRequest("cursor is not a build id from a previous page")
    return BuildQuery(repo, None if state is None else BuildState(state), int(limit_text), cursor)
