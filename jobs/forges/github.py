"""GitHub and GitHub Enterprise Server through PyGithub.

Refs are resolved with ``GET /repos/{owner}/{repo}/commits/{ref}`` in the ``sha``
media type (the answer is the 40 hex digits, not the whole commit with its diff),
asking ``heads/<name>`` then ``tags/<name>`` (the order ``git ls-remote`` resolution
uses), then the name itself when it looks like an abbreviated SHA. Every GET is
conditional on the ETag of the last answer: a ``304`` costs no rate limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import github
import requests
from github import GithubException

from .. import metrics
from ..sources.specs import SHA_RE, ResolvedRef
from .base import CommitStatus, ETagCache, HookChange, RefLookups, resolve_ref
from .errors import ForgeRateLimited, ForgeUnavailable, rate_limit_error

SHA_MEDIA_TYPE = "application/vnd.github.sha"
JSON_MEDIA_TYPE = "application/vnd.github+json"
GITHUB_STATES = {
    "pending": "pending",
    "running": "pending",
    "success": "success",
    "failure": "failure",
    "cancelled": "error",  # GitHub has no "cancelled"; "error" is not the commit's fault
}
HOOK_EVENTS = ["push"]


def default_api_url(web_url: str) -> str:
    """``https://api.github.com`` for github.com, ``<url>/api/v3`` for Enterprise."""
    if web_url.rstrip("/") in ("https://github.com", "https://www.github.com"):
        return "https://api.github.com"
    return f"{web_url.rstrip('/')}/api/v3"


class GitHubClient:
    kind = "github"

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        cache: ETagCache | None = None,
        clock: Callable[[], float] = time.time,
        verify: bool | str = True,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._verify = verify
        """requests' ``verify``: True, or a CA file (``jobs.trust``)."""
        self._token = token
        self._timeout = max(math.ceil(timeout), 1)
        self._cache = cache or ETagCache()
        self._clock = clock

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r})"

    def _connect(self) -> github.Github:
        """A client for one operation (its requests share a connection), to be closed
        after it: nothing is left open between operations or across threads."""
        return github.Github(
            auth=github.Auth.Token(self._token),
            base_url=self.api_url,
            timeout=self._timeout,
            retry=None,  # a rate limit is reported, never slept through
            lazy=True,
            seconds_between_requests=None,
            seconds_between_writes=None,
            user_agent="binderhub-service",
            verify=self._verify,
        )

    def _failure(self, e: Exception) -> Exception:
        if isinstance(e, GithubException):
            limited = rate_limit_error("GitHub", e.status, e.headers, self._clock())
            if limited is not None:
                return limited
            message = e.data.get("message") if isinstance(e.data, dict) else None
            return ForgeUnavailable(f"GitHub answered {e.status}: {message or e.data!r}")
        return ForgeUnavailable(f"GitHub cannot be reached: {e}")

    # -- refs -----------------------------------------------------------------

    def _get(self, gh: github.Github, path: str, accept: str) -> Any | None:
        """The answer to a conditional GET; None for 404 and 422 (GitHub's "no commit
        found" for a ref it cannot parse)."""
        key = f"{accept} {path}"
        cached = self._cache.get(key)
        headers = {"Accept": accept}
        if cached is not None:
            headers["If-None-Match"] = cached[0]
        try:
            answer, data = gh.requester.requestJsonAndCheck("GET", path, headers=headers)
        except GithubException as e:
            if e.status in (404, 422):
                metrics.FORGE_REF_REQUESTS.labels(self.kind, "not_found").inc()
                return None
            error = self._failure(e)
            result = "rate_limited" if isinstance(error, ForgeRateLimited) else "failed"
            metrics.FORGE_REF_REQUESTS.labels(self.kind, result).inc()
            raise error from e
        except requests.RequestException as e:
            metrics.FORGE_REF_REQUESTS.labels(self.kind, "failed").inc()
            raise self._failure(e) from e
        if data is None and cached is not None:  # 304 Not Modified: an empty body
            metrics.FORGE_REF_REQUESTS.labels(self.kind, "not_modified").inc()
            return cached[1]
        metrics.FORGE_REF_REQUESTS.labels(self.kind, "fetched").inc()
        if accept == SHA_MEDIA_TYPE and isinstance(data, dict):
            value = data.get("data") or data.get("sha")
        elif isinstance(data, dict):
            value = data.get("default_branch")
        else:
            value = None
        if not isinstance(value, str):
            raise ForgeUnavailable(f"GitHub answered GET {path} with an unexpected body")
        value = value.strip()
        etag = {str(k).lower(): v for k, v in answer.items()}.get("etag")
        self._cache.put(key, etag, value)
        return value

    def _sha(self, gh: github.Github, project: str, ref: str) -> str | None:
        sha = self._get(gh, f"/repos/{project}/commits/{quote(ref, safe='/')}", SHA_MEDIA_TYPE)
        if sha is not None and not SHA_RE.match(sha):
            raise ForgeUnavailable(f"GitHub answered {sha!r} for the commit of {ref}")
        return sha

    def resolve(self, project: str, ref: str) -> ResolvedRef | None:
        with self._connect() as gh:
            lookups = RefLookups(
                default_branch=lambda: self._get(gh, f"/repos/{project}", JSON_MEDIA_TYPE),
                branch=lambda name: self._sha(gh, project, f"heads/{name}"),
                tag=lambda name: self._sha(gh, project, f"tags/{name}"),
                commit=lambda prefix: self._sha(gh, project, prefix),
            )
            return resolve_ref(lookups, ref)

    # -- statuses and hooks ---------------------------------------------------

    def set_status(self, project: str, sha: str, status: CommitStatus) -> None:
        body: dict[str, str] = {
            "state": GITHUB_STATES[status.state],
            "description": status.short_description(),
            "context": status.context,
        }
        if status.target_url:
            body["target_url"] = status.target_url
        try:
            # the lazy repository costs no request; the status is one POST
            with self._connect() as gh:
                gh.get_repo(project).get_commit(sha).create_status(**body)
        except (GithubException, requests.RequestException) as e:
            raise self._failure(e) from e

    def install_hook(self, project: str, url: str, secret: str) -> HookChange:
        config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
        try:
            with self._connect() as gh:
                repo = gh.get_repo(project)
                for hook in repo.get_hooks():
                    if hook.config.get("url") == url:
                        hook.edit("web", config, events=HOOK_EVENTS, active=True)
                        return HookChange("updated", hook.id, url)
                created = repo.create_hook("web", config, events=HOOK_EVENTS, active=True)
        except (GithubException, requests.RequestException) as e:
            raise self._failure(e) from e
        return HookChange("created", created.id, url)
