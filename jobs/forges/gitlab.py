"""GitLab (gitlab.com and self-managed) through python-gitlab.

Refs are resolved with the branch, tag and commit endpoints of
``/api/v4/projects/:id/repository``, in the order ``git ls-remote`` resolution uses;
each GET carries the ETag of the last answer (GitLab answers ``304`` where it can).
python-gitlab sleeps through a ``429`` by default; a response hook turns it into
``ForgeRateLimited`` before it can, so no thread sleeps on a rate limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import gitlab
import requests
from gitlab.exceptions import GitlabError, GitlabHttpError

from .. import metrics
from ..sources.specs import SHA_RE, ResolvedRef
from .base import CommitStatus, ETagCache, HookChange, RefLookups, resolve_ref
from .errors import ForgeRateLimited, ForgeUnavailable, rate_limit_error

GITLAB_STATES = {
    "pending": "pending",
    "running": "running",
    "success": "success",
    "failure": "failed",
    "cancelled": "canceled",
}


def _project_id(project: str) -> str:
    return quote(project, safe="")


class GitLabClient:
    kind = "gitlab"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        cache: ETagCache | None = None,
        clock: Callable[[], float] = time.time,
        verify: bool | str = True,
    ) -> None:
        self._verify = verify
        """requests' ``verify``: True, or a CA file (``jobs.trust``)."""
        self.url = url.rstrip("/")
        """The GitLab instance; python-gitlab adds ``/api/v4``."""
        self._token = token
        self._timeout = timeout
        self._cache = cache or ETagCache()
        self._clock = clock

    def __repr__(self) -> str:
        return f"GitLabClient({self.url!r})"

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        limited = rate_limit_error("GitLab", response.status_code, response.headers, self._clock())
        if limited is not None and response.status_code == 429:
            response.close()  # raised before requests reads it: give the socket back
            raise limited

    def _connect(self) -> gitlab.Gitlab:
        """A client for one operation (its requests share a connection), to be closed
        after it: nothing is left open between operations or across threads."""
        session = requests.Session()
        session.hooks["response"].append(self._on_response)
        return gitlab.Gitlab(
            url=self.url,
            private_token=self._token,
            timeout=self._timeout,
            retry_transient_errors=False,
            user_agent="binderhub-service",
            session=session,
            ssl_verify=self._verify,
        )

    @staticmethod
    def _failure(e: Exception) -> ForgeUnavailable:
        if isinstance(e, GitlabError):
            return ForgeUnavailable(f"GitLab answered {e.response_code}: {e.error_message}")
        return ForgeUnavailable(f"GitLab cannot be reached: {e}")

    # -- refs -----------------------------------------------------------------

    def _get(self, gl: gitlab.Gitlab, path: str, field: tuple[str, ...]) -> str | None:
        """``field`` of the answer to a conditional GET; None for 404."""
        cached = self._cache.get(path)
        headers = {"If-None-Match": cached[0]} if cached is not None else {}
        try:
            response = gl.http_request("get", path, extra_headers=headers, obey_rate_limit=False)
        except GitlabHttpError as e:
            if e.response_code == 304 and cached is not None:
                metrics.FORGE_REF_REQUESTS.labels(self.kind, "not_modified").inc()
                return cached[1]
            if e.response_code == 404:
                metrics.FORGE_REF_REQUESTS.labels(self.kind, "not_found").inc()
                return None
            metrics.FORGE_REF_REQUESTS.labels(self.kind, "failed").inc()
            raise self._failure(e) from e
        except ForgeRateLimited:
            metrics.FORGE_REF_REQUESTS.labels(self.kind, "rate_limited").inc()
            raise
        except (GitlabError, requests.RequestException) as e:
            metrics.FORGE_REF_REQUESTS.labels(self.kind, "failed").inc()
            raise self._failure(e) from e
        metrics.FORGE_REF_REQUESTS.labels(self.kind, "fetched").inc()
        try:
            value: Any = response.json()
            for name in field:
                value = value[name]
        except (ValueError, KeyError, TypeError):
            raise ForgeUnavailable(f"GitLab answered GET {path} with an unexpected body") from None
        if not isinstance(value, str):
            raise ForgeUnavailable(f"GitLab answered GET {path} with an unexpected body")
        self._cache.put(path, response.headers.get("ETag"), value)
        return value

    def _commit(self, gl: gitlab.Gitlab, project: str, endpoint: str, name: str) -> str | None:
        path = f"/projects/{_project_id(project)}/repository/{endpoint}/{quote(name, safe='')}"
        sha = self._get(gl, path, ("id",) if endpoint == "commits" else ("commit", "id"))
        if sha is not None and not SHA_RE.match(sha):
            raise ForgeUnavailable(f"GitLab answered {sha!r} for the commit of {name}")
        return sha

    def _default_branch(self, gl: gitlab.Gitlab, project: str) -> str | None:
        return self._get(gl, f"/projects/{_project_id(project)}", ("default_branch",))

    def resolve(self, project: str, ref: str) -> ResolvedRef | None:
        with self._connect() as gl:
            lookups = RefLookups(
                default_branch=lambda: self._default_branch(gl, project),
                branch=lambda name: self._commit(gl, project, "branches", name),
                tag=lambda name: self._commit(gl, project, "tags", name),
                commit=lambda prefix: self._commit(gl, project, "commits", prefix),
            )
            return resolve_ref(lookups, ref)

    # -- statuses and hooks ---------------------------------------------------

    def set_status(self, project: str, sha: str, status: CommitStatus) -> None:
        body = {
            "state": GITLAB_STATES[status.state],
            "name": status.context,
            "description": status.short_description(),
        }
        if status.target_url:
            body["target_url"] = status.target_url
        if status.ref:
            body["ref"] = status.ref
        try:
            # lazy objects cost no request: the status is one POST
            with self._connect() as gl:
                lazy = gl.projects.get(project, lazy=True)
                lazy.commits.get(sha, lazy=True).statuses.create(body)
        except (GitlabError, requests.RequestException) as e:
            raise self._failure(e) from e

    def install_hook(self, project: str, url: str, secret: str) -> HookChange:
        settings = {
            "url": url,
            "push_events": True,
            "tag_push_events": True,
            "token": secret,
            "enable_ssl_verification": True,
        }
        try:
            with self._connect() as gl:
                lazy = gl.projects.get(project, lazy=True)
                for hook in lazy.hooks.list(get_all=True):
                    if hook.url == url:
                        lazy.hooks.update(hook.id, settings)
                        return HookChange("updated", int(hook.id), url)
                created = lazy.hooks.create(settings)
        except (GitlabError, requests.RequestException) as e:
            raise self._failure(e) from e
        return HookChange("created", int(created.id), url)
