"""Local stand-ins for the GitHub and GitLab REST APIs, and a real git HTTP server.

GitHub and GitLab cannot be reached from the test machines. The stand-ins answer the
endpoints the service uses with the status codes, headers and bodies the forges'
documentation gives (GitHub REST v3 under ``/api/v3`` as GitHub Enterprise serves it,
GitLab REST v4 under ``/api/v4``), including ETags with ``304 Not Modified`` and the
rate-limit answers, and record every request (method, raw path, headers, body) for
the tests to assert. Their repositories are what the tests put in them: usually the
branches and tags of a real repository on the real git server.

``start_http_git_server`` is no stand-in: it is ``git http-backend`` (real git) behind
a small HTTP server that demands HTTP Basic credentials, for private repositories. Like
nginx and Apache, the server decodes the request path and resolves its dot segments
before it maps the path to a repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

Answer = tuple[int, dict[str, str], bytes]


FORGE_TOKEN = "forge-token-0123456789"
"""The token the stand-ins accept (tests/integration/conftest.py: ``github``, ``gitlab``)."""


@dataclass
class Recorded:
    method: str
    path: str
    """Raw, as sent: ``%2F`` stays encoded."""
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ForgeRepo:
    """A repository as the stand-in knows it."""

    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: set[str] = field(default_factory=set)

    def all_commits(self) -> set[str]:
        return self.commits | set(self.branches.values()) | set(self.tags.values())


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(body).encode(),
    )


class StandIn:
    """A threaded HTTP server whose answers come from ``handle``; records requests."""

    prefix = ""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.repos: dict[str, ForgeRepo] = {}
        self.fail_with: int | None = None
        """Answer every request with this status (a forge that is down)."""
        self.rate_limited_until: float | None = None
        self.before_answer: Callable[[Recorded], None] | None = None
        """Called in the request's own thread before the request is recorded and
        answered: a test can hold requests there (a slow forge) without holding others."""
        self._lock = threading.Lock()
        self._next_id = 1
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                if standin.before_answer is not None:
                    standin.before_answer(recorded)
                with standin._lock:
                    standin.requests.append(recorded)
                    status, headers, payload = standin.answer(recorded)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}{self.prefix}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def requests_to(self, method: str, path_part: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def answer(self, request: Recorded) -> Answer:
        if self.fail_with is not None:
            return _json(self.fail_with, {"message": "Internal Server Error"})
        path = urlsplit(request.path).path
        if not path.startswith(self.prefix + "/"):
            return _json(404, {"message": "Not Found"})
        return self.handle(request, path[len(self.prefix) :])

    def handle(self, request: Recorded, path: str) -> Answer:
        raise NotImplementedError

    @staticmethod
    def conditional(request: Recorded, answer: Answer, weak: bool = False) -> Answer:
        """Add an ETag to a 200 answer; 304 when the request already has it."""
        status, headers, body = answer
        if status != 200:
            return answer
        digest = hashlib.sha256(body).hexdigest()[:32]
        etag = f'W/"{digest}"' if weak else f'"{digest}"'
        if request.headers.get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        return status, {**headers, "ETag": etag}, body


class GitHubStandIn(StandIn):
    """GitHub Enterprise's REST API under ``/api/v3``, as PyGithub reaches it."""

    prefix = "/api/v3"
    DOCS = "https://docs.github.com/rest"

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.statuses: list[dict[str, Any]] = []
        self.hooks: dict[str, list[dict[str, Any]]] = {}
        self.remaining = 5000

    def _rate_headers(self, counted: bool) -> dict[str, str]:
        if counted:
            self.remaining = max(self.remaining - 1, 0)
        reset = int(self.rate_limited_until or time.time() + 3600)
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(5000 - self.remaining),
            "x-ratelimit-resource": "core",
        }

    def handle(self, request: Recorded, path: str) -> Answer:
        if request.headers.get("authorization") not in (
            f"token {self.token}",
            f"Bearer {self.token}",
        ):
            return _json(401, {"message": "Bad credentials", "documentation_url": self.DOCS})
        if self.rate_limited_until is not None and time.time() < self.rate_limited_until:
            self.remaining = 0
            return _json(
                403,
                {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                },
                self._rate_headers(counted=False),
            )
        status, headers, body = self._route(request, path)
        if status == 304:
            return status, {**headers, **self._rate_headers(counted=False)}, body
        return status, {**headers, **self._rate_headers(counted=True)}, body

    def _route(self, request: Recorded, path: str) -> Answer:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos":
            return _json(404, {"message": "Not Found", "documentation_url": self.DOCS})
        full_name = f"{parts[1]}/{parts[2]}"
        repo = self.repos.get(full_name)
        if repo is None:
            return _json(404, {"message": "Not Found", "documentation_url": self.DOCS})
        rest = parts[3:]
        if not rest and request.method == "GET":
            return self.conditional(request, _json(200, self._repository(full_name, repo)))
        if rest[:1] == ["commits"] and len(rest) > 1 and request.method == "GET":
            return self.conditional(request, self._commit(request, full_name, repo, rest[1:]))
        if rest[:1] == ["statuses"] and len(rest) == 2 and request.method == "POST":
            return self._create_status(request, full_name, rest[1])
        if rest[:1] == ["hooks"]:
            return self._hooks(request, full_name, rest[1:])
        return _json(404, {"message": "Not Found", "documentation_url": self.DOCS})

    def _repository(self, full_name: str, repo: ForgeRepo) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": 1296269,
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "private": True,
            "html_url": f"{self.url}/{full_name}",
            "url": f"{self.api_url}/repos/{full_name}",
            "default_branch": repo.default_branch,
            "visibility": "private",
        }

    def _commit(self, request: Recorded, full_name: str, repo: ForgeRepo, ref: list[str]) -> Answer:
        name = unquote("/".join(ref))
        sha = None
        if name.startswith("heads/"):
            sha = repo.branches.get(name[6:])
        elif name.startswith("tags/"):
            sha = repo.tags.get(name[5:])
        elif len(name) >= 4:  # a SHA, possibly abbreviated, or a bare branch or tag name
            found = [c for c in repo.all_commits() if c.startswith(name)]
            sha = found[0] if len(found) == 1 else repo.branches.get(name) or repo.tags.get(name)
        if sha is None:
            return _json(
                422,
                {
                    "message": f"No commit found for SHA: {name}",
                    "documentation_url": "https://docs.github.com/rest/commits/commits#get-a-commit",
                    "status": "422",
                },
            )
        if request.headers.get("accept") == "application/vnd.github.sha":
            return 200, {"Content-Type": "application/vnd.github.sha; charset=utf-8"}, sha.encode()
        return _json(
            200,
            {
                "sha": sha,
                "node_id": "C_" + sha[:10],
                "url": f"{self.api_url}/repos/{full_name}/commits/{sha}",
                "html_url": f"{self.url}/{full_name}/commit/{sha}",
                "commit": {"message": "change", "tree": {"sha": "0" * 40}},
                "parents": [],
                "files": [],
            },
        )

    def _create_status(self, request: Recorded, full_name: str, sha: str) -> Answer:
        body = request.json()
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return _json(422, {"message": "Validation Failed", "documentation_url": self.DOCS})
        if len(body.get("description") or "") > 140:
            return _json(422, {"message": "Validation Failed", "documentation_url": self.DOCS})
        status = {
            "url": f"{self.api_url}/repos/{full_name}/statuses/{sha}",
            "avatar_url": None,
            "id": self.new_id(),
            "node_id": "SC_kwDOAAAAAA",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": "2026-11-25T22:00:00Z",
            "updated_at": "2026-11-25T22:00:00Z",
            "creator": {"login": "binder-bot", "id": 2, "type": "User"},
        }
        self.statuses.append({"repo": full_name, "sha": sha, **status})
        return _json(201, status)

    def _hook(self, full_name: str, hook: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{full_name}/hooks/{hook['id']}"
        config = {k: v for k, v in hook["config"].items() if k != "secret"}
        if "secret" in hook["config"]:
            config["secret"] = "********"  # GitHub never shows a hook's secret
        return {
            "type": "Repository",
            "id": hook["id"],
            "name": "web",
            "active": hook["active"],
            "events": hook["events"],
            "config": config,
            "updated_at": "2026-11-25T22:00:00Z",
            "created_at": "2026-11-25T22:00:00Z",
            "url": url,
            "test_url": f"{url}/test",
            "ping_url": f"{url}/pings",
            "deliveries_url": f"{url}/deliveries",
            "last_response": {"code": None, "status": "unused", "message": None},
        }

    def _hooks(self, request: Recorded, full_name: str, rest: list[str]) -> Answer:
        hooks = self.hooks.setdefault(full_name, [])
        if not rest and request.method == "GET":
            return _json(200, [self._hook(full_name, h) for h in hooks])
        if not rest and request.method == "POST":
            body = request.json()
            hook = {
                "id": self.new_id(),
                "config": body["config"],
                "events": body.get("events", ["push"]),
                "active": body.get("active", True),
            }
            hooks.append(hook)
            return _json(201, self._hook(full_name, hook))
        if len(rest) == 1 and request.method == "PATCH":
            for hook in hooks:
                if str(hook["id"]) == rest[0]:
                    body = request.json()
                    hook.update({k: body[k] for k in ("config", "events", "active") if k in body})
                    return _json(200, self._hook(full_name, hook))
        return _json(404, {"message": "Not Found", "documentation_url": self.DOCS})


class GitLabStandIn(StandIn):
    """GitLab's REST API v4, as python-gitlab reaches it."""

    prefix = "/api/v4"

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.statuses: list[dict[str, Any]] = []
        self.hooks: dict[str, list[dict[str, Any]]] = {}

    def handle(self, request: Recorded, path: str) -> Answer:
        if request.headers.get("private-token") != self.token:
            return _json(401, {"message": "401 Unauthorized"})
        if self.rate_limited_until is not None and time.time() < self.rate_limited_until:
            reset = int(self.rate_limited_until)
            return (
                429,
                {
                    "Content-Type": "text/plain",
                    "Retry-After": str(max(reset - int(time.time()), 1)),
                    "RateLimit-Limit": "2000",
                    "RateLimit-Observed": "2001",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                },
                b"Retry later\n",
            )
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "projects":
            return _json(404, {"message": "404 Not Found"})
        project = unquote(parts[1])
        repo = self.repos.get(project)
        if repo is None:
            return _json(404, {"message": "404 Project Not Found"})
        rest = parts[2:]
        if not rest and request.method == "GET":
            return self.conditional(request, _json(200, self._project(project, repo)), weak=True)
        if rest[:1] == ["repository"] and len(rest) == 3 and request.method == "GET":
            answer = self._repository(project, repo, rest[1], unquote(rest[2]))
            return self.conditional(request, answer, weak=True)
        if rest[:1] == ["statuses"] and len(rest) == 2 and request.method == "POST":
            return self._create_status(request, project, rest[1])
        if rest[:1] == ["hooks"]:
            return self._hooks(request, project, rest[1:])
        return _json(404, {"message": "404 Not Found"})

    def _project(self, project: str, repo: ForgeRepo) -> dict[str, Any]:
        return {
            "id": 3,
            "description": None,
            "name": project.rsplit("/", 1)[-1],
            "name_with_namespace": project.replace("/", " / "),
            "path": project.rsplit("/", 1)[-1],
            "path_with_namespace": project,
            "default_branch": repo.default_branch,
            "visibility": "private",
            "web_url": f"{self.url}/{project}",
            "http_url_to_repo": f"{self.url}/{project}.git",
            "ssh_url_to_repo": f"git@127.0.0.1:{project}.git",
        }

    @staticmethod
    def _commit(sha: str) -> dict[str, Any]:
        return {
            "id": sha,
            "short_id": sha[:8],
            "title": "change",
            "message": "change\n",
            "author_name": "Test",
            "author_email": "test@example.org",
            "created_at": "2026-11-25T22:00:00.000+00:00",
            "parent_ids": [],
            "web_url": f"http://gitlab.example/-/commit/{sha}",
        }

    def _repository(self, project: str, repo: ForgeRepo, kind: str, name: str) -> Answer:
        if kind == "branches":
            sha = repo.branches.get(name)
            if sha is None:
                return _json(404, {"message": "404 Branch Not Found"})
            return _json(
                200,
                {
                    "name": name,
                    "merged": False,
                    "protected": name == repo.default_branch,
                    "default": name == repo.default_branch,
                    "developers_can_push": False,
                    "developers_can_merge": False,
                    "can_push": True,
                    "web_url": f"{self.url}/{project}/-/tree/{name}",
                    "commit": self._commit(sha),
                },
            )
        if kind == "tags":
            sha = repo.tags.get(name)
            if sha is None:
                return _json(404, {"message": "404 Tag Not Found"})
            return _json(
                200,
                {
                    "name": name,
                    "message": "",
                    "target": sha,
                    "commit": self._commit(sha),
                    "release": None,
                    "protected": False,
                    "created_at": None,
                },
            )
        if kind == "commits":
            found = [c for c in repo.all_commits() if c.startswith(name)]
            if len(found) != 1:
                return _json(404, {"message": "404 Commit Not Found"})
            return _json(200, self._commit(found[0]))
        return _json(404, {"message": "404 Not Found"})

    def _create_status(self, request: Recorded, project: str, sha: str) -> Answer:
        body = request.json()
        state = body.get("state")
        if state not in ("pending", "running", "success", "failed", "canceled", "skipped"):
            return _json(400, {"error": "state does not have a valid value"})
        status = {
            "id": self.new_id(),
            "sha": sha,
            "ref": body.get("ref"),
            "status": state,
            "name": body.get("name") or body.get("context") or "default",
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "created_at": "2026-11-25T22:00:00.000Z",
            "started_at": None,
            "finished_at": None,
            "allow_failure": False,
            "coverage": None,
            "pipeline_id": 101,
            "author": {"id": 1, "username": "binder-bot", "name": "Binder Bot", "state": "active"},
        }
        self.statuses.append({"project": project, **status})
        return _json(201, status)

    def _hook(self, project: str, hook: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": hook["id"],
            "url": hook["url"],
            "project_id": 3,
            "push_events": hook["push_events"],
            "tag_push_events": hook["tag_push_events"],
            "merge_requests_events": False,
            "enable_ssl_verification": hook["enable_ssl_verification"],
            "created_at": "2026-11-25T22:00:00.000Z",
            "alert_status": "executable",
        }

    def _hooks(self, request: Recorded, project: str, rest: list[str]) -> Answer:
        hooks = self.hooks.setdefault(project, [])
        fields = ("url", "push_events", "tag_push_events", "token", "enable_ssl_verification")
        if not rest and request.method == "GET":
            return _json(200, [self._hook(project, h) for h in hooks])
        if not rest and request.method == "POST":
            body = request.json()
            hook = {"id": self.new_id(), "push_events": True, "tag_push_events": False}
            hook.update(
                {"enable_ssl_verification": True, **{k: body[k] for k in fields if k in body}}
            )
            hooks.append(hook)
            return _json(201, self._hook(project, hook))
        if len(rest) == 1 and request.method == "PUT":
            for hook in hooks:
                if str(hook["id"]) == rest[0]:
                    body = request.json()
                    hook.update({k: body[k] for k in fields if k in body})
                    return _json(200, self._hook(project, hook))
        return _json(404, {"message": "404 Not found"})


# -- a real git server over HTTP, with Basic authentication ---------------------------


@dataclass
class HttpGitServer:
    """``git http-backend`` serving ``base`` at ``http://127.0.0.1:PORT/<path>``."""

    base: Path
    server: ThreadingHTTPServer
    authorizations: list[list[str]]
    """The ``Authorization`` headers of every request, in order."""
    scheme: str = "http"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def host(self) -> str:
        host = self.server.server_address[0]
        return host if isinstance(host, str) else host.decode()

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def start_http_git_server(
    base: Path,
    accept: Callable[[list[str]], bool],
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
) -> HttpGitServer:
    """Serve the repositories under ``base`` on ``host`` to requests whose
    ``Authorization`` headers ``accept`` admits; others get ``401`` with a Basic
    challenge, as forges answer. With ``tls`` (a server context), over HTTPS."""
    seen: list[list[str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            authorization = self.headers.get_all("Authorization") or []
            seen.append(authorization)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not accept(authorization):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                "GIT_PROJECT_ROOT": str(base),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": posixpath.normpath(unquote(path)),
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "tester",
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "PATH": "/usr/bin:/bin",
                "HOME": "/nonexistent",
            }
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            status = 200
            headers: list[tuple[str, str]] = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return HttpGitServer(base, server, seen, "https" if tls is not None else "http")
