"""The service's errors: one hierarchy, two kinds.

Every error the service answers a request with is a ``PermanentError`` or a
``TemporaryError``, and ``webhook.errors`` maps the type (never the message) to an HTTP
status in one table:

- *permanent*: the request is wrong, or names something that is not there or not for
  us. Asking again unchanged gets the same answer (4xx).
- *temporary*: something we depend on failed or is busy. The same request may succeed
  later; ``retry_after`` says when to try (seconds, sent as ``Retry-After``). A temporary
  error is never turned into a decision such as "the image is missing" (BinderHub
  rebuilds silently when its registry check fails; we refuse to guess).

The pipeline's errors are here; the HTTP layer's few (a malformed body, a missing
token, a hub that does not answer) subclass these two in ``webhook``, which ``jobs``
never imports. ``BuildFailed`` is an outcome of a build, not an answer to a request.
"""

from __future__ import annotations

import math
import time


class BuildServiceError(Exception):
    """Base of every error the service raises on purpose."""


class PermanentError(BuildServiceError):
    """The request is wrong or names what is not there: asking again changes nothing."""


class TemporaryError(BuildServiceError):
    """Something we depend on failed; the same request may succeed later.

    ``retry_after`` is the delay, in whole seconds (at least 1), after which asking
    again is reasonable: the class's ``default_retry_after`` unless the raiser knows
    better (a rate limit's reset time, a quota window).
    """

    default_retry_after = 30

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        delay = self.default_retry_after if retry_after is None else retry_after
        self.retry_after = max(int(delay), 1)


# -- permanent -------------------------------------------------------------------------


class InvalidRequest(PermanentError):
    """The request itself is wrong: a malformed repo, ref or field."""


class RepoNotAllowed(InvalidRequest):
    """The repository is well formed but not on the allow-list."""


class RefNotFound(InvalidRequest):
    """The repository answered, and it has no such branch, tag or commit."""


class RepoNotReadable(InvalidRequest):
    """The repository's host answered and refused: no such repository, or a private one
    and the credentials we have (if any) are not accepted. Credentials or a URL must
    change before asking again helps."""


class RecordNotFound(InvalidRequest):
    """The provider answered, and it has no such record or version, or not a public one
    (issue 25). The message names the record."""


class RecordTooLarge(InvalidRequest):
    """The record's files add up to more than the service builds from (issue 25)."""


class HostNotHandled(InvalidRequest):
    """A DOI or URL leads to a host that no provider of ours serves (issue 25); the
    message names the host."""


class NotFound(PermanentError):
    """No build with that id, or no such provider."""


class UnknownProvider(NotFound):
    """A provider name that this service does not offer; the message names those it
    does (issue 25)."""


class Conflict(PermanentError):
    """The request does not fit the build's state (e.g. cancelling a finished build)."""


# -- temporary -------------------------------------------------------------------------


class QuotaExceeded(TemporaryError):
    """The requester (or repository) used up a quota; asking again after
    ``retry_after`` seconds may work.

    ``quota`` names the setting (e.g. ``per_user.builds_per_window``); ``frees_at``
    is the Unix time a window quota frees a build, None for ``max_queued`` (it frees
    when a build finishes, and ``retry_after`` is a guess).
    """

    def __init__(
        self, message: str, *, quota: str, retry_after: int, frees_at: float | None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.quota = quota
        self.frees_at = frees_at


class ForgeRateLimited(TemporaryError):
    """The forge's API rate limit is used up until ``retry_at`` (epoch seconds);
    ``retry_after`` is the time until then (at least 1 s)."""

    def __init__(self, forge: str, retry_at: float, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        delay = max(math.ceil(retry_at - now), 1)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now + delay))
        super().__init__(
            f"the {forge} API rate limit is exhausted; retry after {when} (in {delay} s)",
            retry_after=delay,
        )


class GitError(TemporaryError):
    """``git ls-remote`` took too long."""


class RepoUnreachable(GitError):
    """The repository's host could not be reached or failed (no connection, a name
    that does not resolve, a 5xx): it may answer later."""


class ProviderUnavailable(TemporaryError):
    """A content provider's API (or doi.org) could not answer: no connection, a
    timeout, a 5xx or 429, or an answer whose shape we do not know (issue 25). Never
    remembered: the same request may resolve later."""


class RegistryError(TemporaryError):
    """The registry could not answer whether an image exists."""


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (or we have none and it wants some): the
    operator's to fix, not the requester's, so temporary for the request."""


class RegistryDeletionUnsupported(RegistryError):
    """The registry does not delete manifests (distribution without
    ``storage.delete.enabled`` answers HTTP 405): retention cannot run (issue 26)."""


class RetentionGuardError(TemporaryError):
    """Retention could not read what must not be deleted (the images in use, the
    catalog's offer) before it planned: nothing was deleted (issue 26)."""


class BuildFailed(BuildServiceError):
    """Raised by executors: the build did not produce the image.

    ``remember`` says whether the failure is positively the commit's own (a Dockerfile
    step or an environment file failed; see ``jobs.repo2docker.failures``), so that asking again
    would fail again and is refused until it expires or is forced. Everything else
    (the registry, the daemon, signals, timeouts, the builder) may work next time.
    """

    def __init__(self, message: str, *, remember: bool = False) -> None:
        super().__init__(message)
        self.remember = remember
