"""What a push asks the pipeline for, and which of its refs build. Pure, no I/O.

A forge's delivery is verified and parsed in ``webhook/``; what reaches the pipeline is
a ``PushRequest``: who sent it, its delivery id, and the ``Push`` (or why it is
``Ignored``). ``select_refs`` decides which pushed refs build, with the same rule the
reconciler applies to a remote's ref list (``skip_reason``): a ref builds when its
repository is in ``settings.repos`` and the ref is a branch matching ``branches``
(default: the default branch only) or a tag matching ``tags`` (default: every tag).
``BuildService.receive_push`` acts on the selection and answers with a ``Decision``.

A deletion of a selected ref builds nothing and supersedes the queued builds of that
ref that only it asked for (``jobs.coordinator.push_intake``; issue 20): left queued,
they would run, fail on a commit the server may no longer have, and report a failure
for a ref that is gone.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..model import DELETION_PREFIX, Build, BuildOutcome
from ..settings import RepoSettings
from ..sources.specs import RefKind, ResolvedRef

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


@dataclass(frozen=True)
class RefChange:
    """One ref a push moved."""

    ref: str
    """The full ref name, checked with ``check_ref``: ``refs/heads/main``."""
    sha: str | None
    """The commit the ref now points at; None when the push deleted the ref."""


@dataclass(frozen=True)
class Push:
    """A push to a repository."""

    urls: tuple[str, ...]
    """Every URL the payload names the repository by, canonical
    (``jobs.sources.urls.canonical_repo_url``), in the payload's order, without repeats."""
    default_branch: str | None
    """The repository's default branch, when the payload says."""
    changes: tuple[RefChange, ...]


@dataclass(frozen=True)
class Ignored:
    """A delivery that asks for nothing, and why."""

    reason: str


@dataclass(frozen=True)
class PushRequest:
    """A verified, parsed push delivery, as the pipeline receives it."""

    provider: str
    """Who sent it (``github``, ``gitea``, ``gitlab``): the builds' trigger."""
    delivery_id: str | None
    """The forge's delivery id (the same on redelivery); None when it gave none."""
    event: Push | Ignored


@dataclass(frozen=True)
class Deletion:
    """What the deletion of a selected ref did."""

    ref: str
    """The full ref name."""
    superseded: tuple[str, ...] = ()
    """Ids of the queued builds of the ref it superseded."""
    kept: tuple[str, ...] = ()
    """Ids of the builds of the ref it left alone: running, or asked for otherwise too
    (by SHA, by a tag, by another ref)."""


@dataclass(frozen=True)
class Decision:
    """What was done with a delivery; its JSON is the answer and what a redelivery gets.

    ``accepted`` when at least one ref was asked to build (even if its image already
    exists: then that build's ``outcome`` is ``cached``) or a deletion superseded a
    queued build, else ``ignored``.
    """

    outcome: Literal["accepted", "ignored"]
    reason: str | None = None
    repo: str | None = None
    builds: tuple[tuple[str, BuildOutcome], ...] = ()
    """(full ref name, the service's answer) for each ref that builds."""
    ignored: tuple[tuple[str, str], ...] = ()
    """(full ref name, reason) for each ref of the push that does not build."""
    deleted: tuple[Deletion, ...] = ()
    """One per selected ref the push deleted."""

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "repo": self.repo,
            "builds": [
                {
                    "id": None if outcome.build is None else outcome.build.id,
                    "ref": ref,
                    "sha": outcome.sha,
                    "image": outcome.image,
                    "outcome": outcome.status,
                }
                for ref, outcome in self.builds
            ],
            "deleted": [
                {"ref": d.ref, "superseded": list(d.superseded), "kept": list(d.kept)}
                for d in self.deleted
            ],
            "ignored": [{"ref": ref, "reason": reason} for ref, reason in self.ignored],
        }


@dataclass(frozen=True)
class PushAnswer:
    """The pipeline's answer to a ``PushRequest``: the decision's JSON, and whether it
    is the one recorded for an earlier delivery with the same id."""

    answer: dict[str, Any]
    duplicate: bool

    @property
    def outcome(self) -> str:
        """``duplicate``, else the decision's outcome (``accepted`` or ``ignored``)."""
        return "duplicate" if self.duplicate else str(self.answer["outcome"])


@dataclass(frozen=True)
class Selected:
    """A pushed ref that builds: its full name, the short name the build records, and
    the commit the push says it points at."""

    full_ref: str
    name: str
    resolved: ResolvedRef


def short_name(full_ref: str) -> str:
    """``refs/heads/main`` -> ``main``, ``refs/tags/v1`` -> ``v1``; other refs unchanged."""
    for prefix in (BRANCH_PREFIX, TAG_PREFIX):
        if full_ref.startswith(prefix):
            return full_ref[len(prefix) :]
    return full_ref


def skip_reason(repo: RepoSettings, default_branch: str | None, full_ref: str) -> str | None:
    """Why a commit on ``full_ref`` of ``repo`` is not built, or None when it is. Pure.

    ``default_branch`` is the repository's default branch as its forge (or its remote
    ``HEAD``) names it; it is only consulted when ``repo.branches`` is not set.
    """
    name = short_name(full_ref)
    if full_ref.startswith(BRANCH_PREFIX):
        if repo.branches is None:
            if default_branch is None:
                return "the default branch is not known; set branches for this repo"
            if name != default_branch:
                return f"not the default branch ({default_branch}) and branches is not set"
            return None
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in repo.branches):
            return "branch does not match the repo's branches"
        return None
    if full_ref.startswith(TAG_PREFIX):
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in repo.tags):
            return "tag does not match the repo's tags"
        return None
    return "not a branch or tag"


def resolved_ref(full_ref: str, sha: str) -> ResolvedRef:
    """What a trusted source (a push, the remote's ref list) says ``full_ref``, a branch
    or a tag, points at."""
    kind: RefKind = "branch" if full_ref.startswith(BRANCH_PREFIX) else "tag"
    return ResolvedRef(sha, kind, full_ref)


def match_repo(
    repos: Sequence[RepoSettings], urls: Sequence[str], *, allow_file: bool
) -> RepoSettings | None:
    """The configured repository any of ``urls`` (canonical) names, if there is one.

    ``file://`` repositories match only when ``allow_file`` (``allow_file_urls``).
    """
    for repo in repos:
        if repo.url in urls and (allow_file or not repo.url.startswith("file://")):
            return repo
    return None


@dataclass(frozen=True)
class Selection:
    """A push's changes of one repository, split by ``select_refs``, each part in the
    push's order."""

    builds: tuple[Selected, ...]
    """The refs that build."""
    deleted: tuple[str, ...]
    """The selected refs the push deleted (full names)."""
    ignored: tuple[tuple[str, str], ...]
    """(full ref name, reason) for the others: not selected by ``skip_reason``, or
    deleted and not selected (reason ``deleted``)."""


def select_refs(repo: RepoSettings, push: Push) -> Selection:
    """Which of ``push``'s changes of ``repo`` build, which delete a ref that builds,
    and which are ignored, and why. Pure."""
    selected: list[Selected] = []
    deleted: list[str] = []
    ignored: list[tuple[str, str]] = []
    for change in push.changes:
        reason = skip_reason(repo, push.default_branch, change.ref)
        if change.sha is None:
            if reason is None:
                deleted.append(change.ref)
            else:
                ignored.append((change.ref, "deleted"))
        elif reason is not None:
            ignored.append((change.ref, reason))
        else:
            resolved = resolved_ref(change.ref, change.sha)
            selected.append(Selected(change.ref, short_name(change.ref), resolved))
    return Selection(tuple(selected), tuple(deleted), tuple(ignored))


def ref_kind_of(full_ref: str) -> RefKind:
    """``branch`` for ``refs/heads/…``, ``tag`` for ``refs/tags/…``, else ``other``."""
    if full_ref.startswith(BRANCH_PREFIX):
        return "branch"
    return "tag" if full_ref.startswith(TAG_PREFIX) else "other"


def same_ref(build: Build, kind: str, name: str) -> bool:
    """Whether ``build`` was asked for by the ref ``name`` (short) of ``kind``; a build
    asked for by a full name (``refs/heads/x``) counts as ``x``. Pure."""
    return build.ref_kind == kind and short_name(build.ref) == name


def delivery_name(provider: str, delivery_id: str | None) -> str:
    """``github delivery <id>``, or ``a github delivery`` without an id. Pure."""
    return f"{provider} delivery {delivery_id}" if delivery_id else f"a {provider} delivery"


def deletion_error(full_ref: str, provider: str, delivery_id: str | None) -> str:
    """The error recorded on a queued build that the deletion of ``full_ref`` superseded:
    ``superseded by the deletion of refs/heads/x in github delivery <id>``. Pure."""
    return f"{DELETION_PREFIX}{full_ref} in {delivery_name(provider, delivery_id)}"
