"""The pass that builds the pushes whose webhook was lost.

Push webhooks and the reconciler answer "which refs build" with the same functions
(``jobs.coordinator.push.skip_reason``, ``resolved_ref``): a ref builds when its repository is in
``settings.repos`` and the ref is a branch matching ``branches`` (default: the default
branch only) or a tag matching ``tags`` (default: every tag).

Webhooks get lost (the forge was down, the hook was disabled, the service was
restarting). ``reconcile_once`` lists each configured repository's branches and tags with
one ``git ls-remote`` and asks for every matching commit whose image is missing, so a
lost webhook costs one interval, never a stale image. Asking is cheap: the image name
dedupes (an image in the registry is ``cached``, one being built is ``joined``) and a
commit whose build failed because of the commit itself is not tried again until that
failure expires (``failed-before``; the coordinator applies one rule for every caller).

Records of content providers in ``settings.repos`` (issue 25) have no webhooks:
``check_records_once`` asks for each one's newest version every
``providers.check_interval`` seconds, as a request without a requester would
(``Intake.receive_request``: ``allowed_repos``, the record cache and its TTL, the
registry, failure memory). A provider that is down (a ``TemporaryError``) records
nothing and is asked again at the next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import BuildServiceError, TemporaryError
from ..model import BuildOutcome
from ..settings import RepoSettings
from ..sources.refs import ls_remote
from ..sources.specs import SHA_RE, ResolvedRef
from .build_requests import BuildRequest
from .intake import Intake
from .push import BRANCH_PREFIX, TAG_PREFIX, resolved_ref, short_name, skip_reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteRefs:
    """A repository's branches and tags as ``git ls-remote --symref`` lists them."""

    default_branch: str | None
    """The branch the remote ``HEAD`` points at; None when the remote does not say."""
    refs: tuple[ResolvedRef, ...]
    """Branches and tags, in the remote's order; annotated tags peeled to their commit."""


def parse_ls_remote(output: str) -> RemoteRefs:
    """Parse ``git ls-remote --symref URL HEAD refs/heads/* refs/tags/*``. Pure.

    ``ref: refs/heads/main<TAB>HEAD`` names the default branch. An annotated tag is
    listed twice, as its tag object and peeled (``refs/tags/v1^{}``): the image is of
    the commit, so the peeled SHA wins.
    """
    default_branch: str | None = None
    shas: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in output.splitlines():
        target, _, name = line.partition("\t")
        if target.startswith("ref: ") and name == "HEAD":
            symref = target[len("ref: ") :].strip()
            if symref.startswith(BRANCH_PREFIX):
                default_branch = symref[len(BRANCH_PREFIX) :]
            continue
        if not SHA_RE.match(target) or not name.startswith((BRANCH_PREFIX, TAG_PREFIX)):
            continue
        if name.endswith("^{}"):
            peeled[name[:-3]] = target
        else:
            shas[name] = target
    refs = tuple(resolved_ref(name, peeled.get(name, sha)) for name, sha in shas.items())
    return RemoteRefs(default_branch, refs)


async def list_remote_refs(
    url: str, *, git_timeout: float, allow_file: bool, git_env: dict[str, str] | None = None
) -> RemoteRefs:
    """One ``git ls-remote`` of ``url``. Raises RepoNotReadable, RepoUnreachable or GitError.
    ``git_env`` carries credentials for private repositories."""
    # "--" ends the options: the URL cannot be taken for one.
    args = ["--symref", "--", url, "HEAD", "refs/heads/*", "refs/tags/*"]
    return parse_ls_remote(
        await ls_remote(args, url, seconds=git_timeout, allow_file=allow_file, extra_env=git_env)
    )


async def reconcile_repo(intake: Intake, repo: RepoSettings) -> list[BuildOutcome]:
    """Ask for the image of every matching branch and tag of ``repo``.

    One outcome per matching ref (``created`` for the commits that were missing). Raises
    what ``git ls-remote`` raises; a failed registry check skips that ref only (it is
    never taken for "missing").
    """
    settings = intake.settings
    remote = await list_remote_refs(
        repo.url,
        git_timeout=settings.git_timeout,
        allow_file=settings.allow_file_urls,
        git_env=intake.resolver.git_env,
    )
    outcomes: list[BuildOutcome] = []
    for ref in remote.refs:
        if skip_reason(repo, remote.default_branch, ref.full_ref) is not None:
            continue
        name = short_name(ref.full_ref)
        try:
            outcome = await intake.request_commit(
                repo.url, name, ref, trigger="reconcile", check_registry=True, follows_ref=True
            )
        except BuildServiceError as e:
            log.warning("reconcile: %s %s: %s", repo.url, ref.full_ref, e)
            continue
        if outcome.status == "created":
            log.info("reconcile: %s %s (%s) was missing; queued", repo.url, name, ref.sha)
        outcomes.append(outcome)
    return outcomes


async def reconcile_once(intake: Intake) -> list[BuildOutcome]:
    """One pass over the git repositories of ``settings.repos`` that are in
    ``allowed_repos``; see the module docstring. A repository that cannot be listed is
    logged and skipped."""
    outcomes: list[BuildOutcome] = []
    for repo in intake.settings.repos:
        if repo.is_record:
            continue
        try:
            intake.check_allowed(repo.url)
            outcomes += await reconcile_repo(intake, repo)
        except BuildServiceError as e:
            log.warning("reconcile: skipping %s: %s", repo.url, e)
    return outcomes


async def check_records_once(intake: Intake) -> list[BuildOutcome]:
    """Ask for the newest version of each record in ``settings.repos``, as a request
    with no requester (trigger ``reconcile``): one outcome per record that resolved
    (``created`` when its version's image was missing). A record that is refused or
    cannot be resolved now is logged and skipped; nothing is recorded for it."""
    outcomes: list[BuildOutcome] = []
    for repo in intake.settings.repos:
        if not repo.is_record:
            continue
        try:
            outcome = await intake.receive_request(BuildRequest(repo.url, trigger="reconcile"))
        except TemporaryError as e:
            log.warning("records: %s cannot be checked now, again next time: %s", repo.url, e)
            continue
        except BuildServiceError as e:
            log.warning("records: skipping %s: %s", repo.url, e)
            continue
        if outcome.status == "created":
            log.info("records: %s version %s was missing; queued", repo.url, outcome.sha)
        outcomes.append(outcome)
    return outcomes


async def reconcile_every(
    intake: Intake,
    interval: float,
    one_pass: Callable[[Intake], Awaitable[list[BuildOutcome]]] = reconcile_once,
) -> None:
    """Run ``one_pass`` (``reconcile_once``, or ``check_records_once``) now and then
    every ``interval`` seconds, until cancelled.

    Returns at once when ``interval`` is 0 (off). A pass that fails unexpectedly is
    logged; the next one runs on time.
    """
    if interval <= 0:
        return
    while True:
        try:
            await one_pass(intake)
        except Exception:
            log.exception("reconcile pass failed")
        await asyncio.sleep(interval)
