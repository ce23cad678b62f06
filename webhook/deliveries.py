"""What GitHub, Gitea and GitLab webhook deliveries say. Pure functions, no I/O.

A delivery is checked in this order, each step refusing with a ``BadRequest`` that
names the problem: who sent it (``github_provider``), that the sender knows the shared
secret (``verify_github_signature``, ``verify_gitlab_token``; both before the body is
parsed), which event it is (``github_delivery``, ``gitlab_delivery``), then what it
asks for (``parse_github``, ``parse_gitlab``): a ``Push`` of refs to commits, or
``Ignored`` with the reason. Events we do not act on are ignored, never refused: forges
disable hooks whose deliveries keep failing.

Commits, not ref names, are what pushes carry: GitHub's ``head_commit.id`` (``after``
when there is no head commit) and GitLab's ``checkout_sha``. GitLab's ``after`` names
the tag object of an annotated tag, and so does GitHub's; neither is built. A deletion
carries 40 zeros.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from jobs.coordinator.push import Ignored, Push, RefChange
from jobs.errors import InvalidRequest
from jobs.sources.specs import SHA_RE, check_ref
from jobs.sources.urls import canonical_repo_url

from .errors import BadRequest

Provider = Literal["github", "gitea", "gitlab"]

ZERO_SHA = "0" * 40
"""What ``after`` (and GitHub's ``before``) carry for a ref that did not exist."""

GITHUB_URL_FIELDS = ("clone_url", "html_url", "ssh_url", "git_url")
"""Fields of a GitHub or Gitea ``repository`` that name it (``url`` is the API URL in
most events, so it is left out)."""

GITLAB_URL_FIELDS = {
    "project": ("git_http_url", "git_ssh_url", "web_url"),
    "repository": ("git_http_url", "git_ssh_url", "homepage"),
}
"""Fields of a GitLab push (project and system hooks alike) that name the project."""

GITLAB_HOOKS = frozenset({"Push Hook", "Tag Push Hook", "System Hook"})
"""``X-Gitlab-Event`` values whose body may be a push; the body's kind decides."""

GITLAB_PUSH_KINDS = frozenset({"push", "tag_push"})

_HEADER_VALUE_RE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,199}$")

T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """Who sent a delivery, which event it is, and its id (the same on redelivery)."""

    provider: Provider
    event: str
    id: str | None
    """``X-GitHub-Delivery`` / ``X-Gitea-Delivery``; GitLab's ``Idempotency-Key``
    (17.4+), else ``X-Gitlab-Event-UUID``. None when the sender gave none."""


# -- who sent it, and do they know the secret ----------------------------------


def github_provider(headers: Mapping[str, str]) -> Provider:
    """``gitea`` when ``X-Gitea-Event`` is present, else ``github``.

    Gitea sends GitHub's headers (``X-GitHub-Event``, ``X-Hub-Signature-256``) beside
    its own; its events are named like GitHub's but not all of them mean the same, so
    a Gitea delivery is never taken for a GitHub one. ``headers`` is case-insensitive
    (Starlette's ``Headers``).
    """
    return "gitea" if "x-gitea-event" in headers else "github"


def github_signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: GitHub's (and Gitea's) signature header."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_github_signature(
    secret: bytes, body: bytes, headers: Mapping[str, str], provider: Provider
) -> None:
    """Refuse (401) a body whose ``X-Hub-Signature-256`` is missing or wrong.

    The comparison takes constant time. Gitea versions that predate
    ``X-Hub-Signature-256`` send the same HMAC, bare, as ``X-Gitea-Signature``.
    """
    given = headers.get("x-hub-signature-256")
    if given is None and provider == "gitea" and "x-gitea-signature" in headers:
        given = "sha256=" + headers["x-gitea-signature"]
    if not given:
        raise BadRequest(
            "missing X-Hub-Signature-256 header: give the webhook the secret configured "
            "as webhooks.github_secret",
            401,
            bearer=False,
        )
    expected = github_signature(secret, body)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise BadRequest(
            "X-Hub-Signature-256 does not match the body: check the webhook's secret",
            401,
            bearer=False,
        )


def verify_gitlab_token(secret: bytes, given: str | None) -> None:
    """Refuse (401) a missing or wrong ``X-Gitlab-Token``; constant-time comparison."""
    if not given:
        raise BadRequest(
            "missing X-Gitlab-Token header: give the webhook the secret token configured "
            "as webhooks.gitlab_token",
            401,
            bearer=False,
        )
    if not hmac.compare_digest(secret, given.encode("utf-8", "replace")):
        raise BadRequest(
            "X-Gitlab-Token does not match: check the webhook's secret token", 401, bearer=False
        )


# -- which event, which delivery ------------------------------------------------


def _header(headers: Mapping[str, str], *names: str, required: bool = False) -> str | None:
    for name in names:
        value = headers.get(name.lower())
        if value:
            if not _HEADER_VALUE_RE.match(value):
                raise BadRequest(f"{name} header must be at most 200 printable characters")
            return value
    if required:
        raise BadRequest(f"missing {names[0]} header")
    return None


def github_delivery(headers: Mapping[str, str], provider: Provider) -> Delivery:
    """The event and delivery id of a GitHub or Gitea delivery (400 if unreadable)."""
    if provider == "gitea":
        event = _header(headers, "X-Gitea-Event", required=True)
        delivery_id = _header(headers, "X-Gitea-Delivery", "X-GitHub-Delivery")
    else:
        event = _header(headers, "X-GitHub-Event", required=True)
        delivery_id = _header(headers, "X-GitHub-Delivery")
    assert event is not None
    return Delivery(provider, event, delivery_id)


def gitlab_delivery(headers: Mapping[str, str]) -> Delivery:
    """The event and delivery id of a GitLab delivery (400 if unreadable).

    ``Idempotency-Key`` stays the same when GitLab retries a delivery;
    ``X-Gitlab-Event-UUID`` is the fallback for GitLab before 17.4.
    """
    event = _header(headers, "X-Gitlab-Event", required=True)
    assert event is not None
    return Delivery("gitlab", event, _header(headers, "Idempotency-Key", "X-Gitlab-Event-UUID"))


# -- what it asks for -----------------------------------------------------------


def _take(data: Mapping[str, Any], name: str, kind: type[T], where: str = "") -> T | None:
    """``data[name]`` if present and not null, checked to be a ``kind``."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        noun = {str: "a string", dict: "an object", bool: "a boolean"}.get(kind, kind.__name__)
        raise BadRequest(f"field {where}{name} must be {noun}")
    return value


def _need(data: Mapping[str, Any], name: str, kind: type[T], where: str = "") -> T:
    value = _take(data, name, kind, where)
    if value is None:
        raise BadRequest(f"missing field: {where}{name}")
    return value


def _ref(data: Mapping[str, Any]) -> str:
    ref = _need(data, "ref", str)
    try:
        check_ref(ref)
        if ref.startswith("refs/"):
            check_ref(ref.split("/", 2)[-1])
        else:
            raise InvalidRequest("ref must be a full ref name (refs/heads/... or refs/tags/...)")
    except InvalidRequest as e:
        raise BadRequest(f"field ref: {e}") from None
    return ref


def _sha(data: Mapping[str, Any], name: str, where: str = "") -> str:
    sha = _need(data, name, str, where)
    if not SHA_RE.match(sha):
        raise BadRequest(f"field {where}{name} must be a 40-character lower-case commit SHA")
    return sha


def _default_branch(data: Mapping[str, Any], where: str) -> str | None:
    branch = _take(data, "default_branch", str, where)
    if branch is not None:
        try:
            check_ref(branch)
        except InvalidRequest as e:
            raise BadRequest(f"field {where}default_branch: {e}") from None
    return branch


def _urls(sections: Sequence[tuple[str, Mapping[str, Any], Sequence[str]]]) -> tuple[str, ...]:
    """The canonical URLs named by ``fields`` of each section; 400 for a malformed one."""
    urls: list[str] = []
    for where, data, fields in sections:
        for name in fields:
            value = _take(data, name, str, where)
            if not value:
                continue
            try:
                url = canonical_repo_url(value, allow_file=True)
            except InvalidRequest as e:
                raise BadRequest(f"field {where}{name}: {e}") from None
            if url not in urls:
                urls.append(url)
    if not urls:
        named = ", ".join(f"{where}{name}" for where, _, fields in sections for name in fields)
        raise BadRequest(f"the payload names no repository URL (one of {named})")
    return tuple(urls)


def parse_github(event: str, data: Mapping[str, Any]) -> Push | Ignored:
    """A GitHub (or Gitea) delivery of ``event``: a ``Push``, or ``Ignored`` with the reason.

    Only ``push`` builds; ``ping`` (sent when a hook is created) and every other event,
    ``create`` included (it names no commit), are ignored. A push needs ``ref``,
    ``after`` and ``repository``; it deletes when ``deleted`` is true or ``after`` is 40
    zeros, and otherwise builds ``head_commit.id``, or ``after`` without a head commit.
    """
    if event == "ping":
        return Ignored("ping: the hook works; push events build")
    if event != "push":
        return Ignored(f"{event!r} events are not handled; only push events build")
    ref = _ref(data)
    after = _sha(data, "after")
    repository = _need(data, "repository", dict)
    urls = _urls([("repository.", repository, GITHUB_URL_FIELDS)])
    default_branch = _default_branch(repository, "repository.")
    sha: str | None
    if _take(data, "deleted", bool) or after == ZERO_SHA:
        sha = None
    else:
        head = _take(data, "head_commit", dict)
        sha = after if head is None else _sha(head, "id", "head_commit.")
    return Push(urls, default_branch, (RefChange(ref, sha),))


def parse_gitlab(event: str, data: Mapping[str, Any]) -> Push | Ignored:
    """A GitLab delivery of ``event``: a ``Push``, or ``Ignored`` with the reason.

    ``Push Hook``, ``Tag Push Hook`` and ``System Hook`` deliveries are dispatched on
    the body's ``object_kind`` (project hooks) or ``event_name`` (system hooks): only
    ``push`` and ``tag_push`` build. A push needs ``ref``, ``after`` and a ``project``
    or ``repository``; it deletes when ``after`` is 40 zeros and otherwise builds
    ``checkout_sha``.
    """
    if event not in GITLAB_HOOKS:
        return Ignored(
            f"{event!r} events are not handled; only Push Hook, Tag Push Hook and "
            "System Hook pushes build"
        )
    kind = _take(data, "object_kind", str) or _take(data, "event_name", str)
    if kind is None:
        raise BadRequest("missing field: object_kind (or event_name, for system hooks)")
    if kind not in GITLAB_PUSH_KINDS:
        return Ignored(f"{event} of kind {kind!r} is not handled; only push and tag_push build")
    ref = _ref(data)
    after = _sha(data, "after")
    sections = [
        (f"{name}.", section, fields)
        for name, fields in GITLAB_URL_FIELDS.items()
        if (section := _take(data, name, dict)) is not None
    ]
    if not sections:
        raise BadRequest("missing field: project")
    urls = _urls(sections)
    project = _take(data, "project", dict) or {}
    default_branch = _default_branch(project, "project.")
    sha = None if after == ZERO_SHA else _sha(data, "checkout_sha")
    return Push(urls, default_branch, (RefChange(ref, sha),))
