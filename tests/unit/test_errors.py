"""The one error hierarchy: what a failed ``git ls-remote`` means, and the HTTP status and
headers each error's type gets (``webhook.errors``)."""

from __future__ import annotations

import pytest

from jobs import errors
from jobs.sources.refs import git_failure
from webhook.auth import Forbidden, Unauthorized
from webhook.errors import BadRequest, headers_for, status_for
from webhook.hub_api import HubUnavailable

URL = "https://git.example.org/owner/repo"

# what git 2.39 prints (the last lines) for each way a repository cannot be read
UNREACHABLE = [
    "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused",
    "fatal: unable to access 'https://h/x/': Could not resolve host: h",
    "fatal: unable to access 'http://h:1/x/': Failed to connect to h port 1 after 0 ms: "
    "Couldn't connect to server",
    "fatal: unable to access 'https://h/x/': The requested URL returned error: 502",
    "fatal: unable to access 'https://h/x/': Connection timed out after 10001 milliseconds",
    "fatal: the remote end hung up unexpectedly",
]
NOT_READABLE = [
    "fatal: remote error: access denied or repository not exported: /does-not-exist",
    "remote: Repository not found.\nfatal: repository 'https://h/x/' not found",
    "fatal: could not read Username for 'https://h': terminal prompts disabled",
    "fatal: Authentication failed for 'https://h/x/'",
    "fatal: unable to access 'https://h/x/': The requested URL returned error: 403",
    "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
    "",
]


@pytest.mark.parametrize("stderr", UNREACHABLE)
def test_a_host_that_cannot_be_reached_is_temporary(stderr: str) -> None:
    error = git_failure(URL, stderr, 128)
    assert isinstance(error, errors.RepoUnreachable)
    assert isinstance(error, errors.TemporaryError)
    assert str(error) == f"cannot read repository {URL}: {stderr.splitlines()[-1]}"


@pytest.mark.parametrize("stderr", NOT_READABLE)
def test_a_repository_the_host_refuses_is_permanent(stderr: str) -> None:
    error = git_failure(URL, stderr, 128)
    assert isinstance(error, errors.RepoNotReadable)
    assert isinstance(error, errors.PermanentError)
    last = stderr.splitlines()[-1] if stderr else "exit code 128"
    assert str(error) == f"cannot read repository {URL}: {last}"


def quota() -> errors.QuotaExceeded:
    return errors.QuotaExceeded("used up", quota="q", retry_after=42, frees_at=None)


# (error, status, Retry-After or None)
ANSWERS: list[tuple[Exception, int, str | None]] = [
    (errors.RepoNotAllowed("r"), 403, None),
    (errors.RefNotFound("r"), 422, None),
    (errors.RepoNotReadable("r"), 422, None),
    (errors.InvalidRequest("r"), 400, None),
    (errors.NotFound("r"), 404, None),
    (errors.Conflict("r"), 409, None),
    (BadRequest("too big", 413), 413, None),
    (Forbidden("no"), 403, None),
    (quota(), 429, "42"),
    (errors.ForgeRateLimited("GitHub", 1_000_300, now=1_000_000), 503, "300"),
    (errors.RepoUnreachable("r"), 503, "30"),
    (errors.GitError("r"), 504, "30"),
    (errors.RegistryError("r"), 503, "30"),
    (errors.RegistryAuthError("r"), 502, "30"),
    (errors.TemporaryError("r", retry_after=5), 503, "5"),
    (HubUnavailable("hub down"), 503, "30"),
    (errors.BuildFailed("r"), 500, None),
    (RuntimeError("r"), 500, None),
]


@pytest.mark.parametrize(("error", "status", "retry_after"), ANSWERS, ids=repr)
def test_the_status_and_retry_after_follow_from_the_type(
    error: Exception, status: int, retry_after: str | None
) -> None:
    assert status_for(error) == status
    assert headers_for(error).get("Retry-After") == retry_after
    if isinstance(error, errors.PermanentError):
        assert 400 <= status < 500
    if isinstance(error, errors.TemporaryError):
        assert status in (429, 502, 503, 504)


def test_a_401_asks_for_a_bearer_token_unless_a_token_would_not_help() -> None:
    assert headers_for(Unauthorized("no token")) == {
        "WWW-Authenticate": 'Bearer realm="binderhub-service"'
    }
    assert headers_for(BadRequest("bad signature", 401, bearer=False)) == {}


def test_a_retry_delay_is_at_least_one_second() -> None:
    assert errors.TemporaryError("r", retry_after=0).retry_after == 1
    assert errors.ForgeRateLimited("GitLab", 10.0, now=20.0).retry_after == 1
