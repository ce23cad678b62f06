"""The pipeline's own errors.

Every failure that leaves ``jobs`` is one of these, so that the HTTP layer can map
them to responses in one place. The split that matters is *permanent* (the request
is wrong: retrying it changes nothing) versus *temporary* (something we depend on
failed: the same request may succeed later). A temporary error is never turned into
a decision such as "the image is missing" (BinderHub rebuilds silently when its
registry check fails; we refuse to guess).
"""


class BuildServiceError(Exception):
    """Base of every error the pipeline raises on purpose."""


class InvalidRequest(BuildServiceError):
    """The request itself is wrong: a malformed repo, ref or field."""


class RepoNotAllowed(InvalidRequest):
    """The repository is well formed but not on the allow-list."""


class RefNotFound(InvalidRequest):
    """The repository answered, and it has no such branch, tag or commit."""


class NotFound(BuildServiceError):
    """No build with that id."""


class Conflict(BuildServiceError):
    """The request does not fit the build's state (e.g. cancelling a finished build)."""


class TemporaryError(BuildServiceError):
    """Something we depend on failed; the same request may succeed later."""


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
        super().__init__(message)
        self.quota = quota
        self.retry_after = retry_after
        self.frees_at = frees_at


class GitError(TemporaryError):
    """``git ls-remote`` failed for a reason other than a missing ref."""


class RepoUnreachable(GitError):
    """The repository could not be read at all (down, private, or not there)."""


class RegistryError(TemporaryError):
    """The registry could not answer whether an image exists."""


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (or we have none and it wants some)."""


class BuildFailed(BuildServiceError):
    """Raised by executors: the build did not produce the image.

    ``remember`` says whether the failure is positively the commit's own (a Dockerfile
    step or an environment file failed; see ``jobs.failures``), so that asking again
    would fail again and is refused until it expires or is forced. Everything else
    (the registry, the daemon, signals, timeouts, the builder) may work next time.
    """

    def __init__(self, message: str, *, remember: bool = False) -> None:
        super().__init__(message)
        self.remember = remember
