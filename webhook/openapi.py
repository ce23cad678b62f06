"""The OpenAPI document served at /openapi.json.

Written out rather than generated from docstrings: it is a contract, and
schemathesis tests the running service against it. Every route the application serves
is in it (``tests/unit/test_openapi_routes.py`` holds the two together): the API, the
hooks (and the 404 of ``/hooks/`` paths that are none), the BinderHub stream, the page,
``/metrics``, this document and the probes; with JupyterHub, ``HUB_PATHS`` too.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

ERROR = {"$ref": "#/components/schemas/Error"}
BUILD_ID = {
    "name": "build_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
STATES = ["queued", "running", "built", "failed", "cancelled", "superseded"]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "The request is malformed; `error` says how.",
        401: "No token, or an invalid one (for a hook: its signature or token).",
        403: "The token lacks the scope, or the repository is not allowed.",
        404: "No such build.",
        409: "The build has finished already.",
        405: "Not a method of this path.",
        413: "The body is too large.",
        415: "The body is not JSON.",
        422: "The repository or ref does not exist.",
        429: "A quota is used up; `Retry-After` says when to ask again.",
        502: "The registry refused our credentials.",
        503: "The registry or a repository could not be reached; try again.",
    }
    return {str(code): _json(ERROR, reasons[code]) for code in codes}


QUOTA = {
    "type": "object",
    "required": ["quota", "limit", "used", "remaining", "frees_at"],
    "properties": {
        "quota": {"type": "string", "examples": ["per_user.builds_per_window"]},
        "limit": {"type": "integer", "minimum": 1},
        "used": {"type": "integer", "minimum": 0},
        "remaining": {"type": "integer", "minimum": 0},
        "frees_at": {
            "type": ["number", "null"],
            "description": "Unix time at which `used` next drops; null when nothing is "
            "used or it drops when a build finishes.",
        },
    },
}

SECURED: list[dict[str, list[str]]] = [{"bearer": []}]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "quota": {"type": "string", "description": "429 only: the quota used up."},
            "retry_after": {"type": "integer", "description": "429 only: seconds."},
            "frees_at": {
                "type": ["number", "null"],
                "description": "429 only: Unix time the quota frees a build; null for "
                "`max_queued` (when a build finishes).",
            },
        },
    },
    "Quotas": {
        "type": "object",
        "required": ["requester", "quotas"],
        "properties": {
            "requester": {"type": "string"},
            "quotas": {"type": "array", "items": QUOTA},
        },
    },
    "BuildRequest": {
        "type": "object",
        "required": ["repo"],
        "additionalProperties": False,
        "properties": {
            "repo": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2048,
                "description": "Repository URL (https, http, git, ssh) or a shortcut "
                "gh/OWNER/REPO/REF or gl/NAMESPACE/PROJECT/REF.",
            },
            "ref": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "description": "Branch, tag or full commit SHA.",
            },
            "force": {
                "type": "boolean",
                "description": "Build even if the last build of this commit failed.",
            },
        },
    },
    "Build": {
        "type": "object",
        "required": ["id", "repo", "ref", "sha", "image", "state"],
        "properties": {
            "id": {"type": ["string", "null"]},
            "repo": {"type": "string"},
            "ref": {"type": "string"},
            "ref_kind": {"type": "string", "enum": ["branch", "tag", "commit", "head", "other"]},
            "sha": {"type": "string"},
            "image": {"type": "string"},
            "name": {"type": "string"},
            "state": {"type": "string", "enum": STATES},
            "trigger": {"type": "string"},
            "created_at": {"type": "number"},
            "started_at": {"type": ["number", "null"]},
            "finished_at": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
            "attempts": {"type": "integer"},
            "outcome": {
                "type": "string",
                "enum": ["created", "joined", "cached", "failed-before"],
                "description": "Only in answers to build requests.",
            },
        },
    },
    "BuildPage": {
        "type": "object",
        "required": ["builds", "next_cursor"],
        "properties": {
            "builds": {"type": "array", "items": {"$ref": "#/components/schemas/Build"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "BuildLog": {
        "type": "object",
        "required": ["id", "state", "lines"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": STATES},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["phase", "message"],
                    "properties": {"phase": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["ready", "degraded", "unavailable"],
                "description": "`ready`: everything answers. `degraded`: a shared "
                "dependency does not (still 200: this pod answers; builds wait for it). "
                "`unavailable`: this pod's own store does not (503).",
            },
            "checks": {
                "type": "object",
                "description": "One entry per dependency, from the last background check: "
                "`store` (this pod's own), and the shared ones: `docker`, `kubernetes` "
                "and/or `buildkit` (the build backend), `registry`, and `jupyterhub` when "
                "enabled.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["ok", "since", "checked_at"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "error": {"type": "string", "description": "Why, naming it."},
                        "since": {
                            "type": "number",
                            "description": "Since when (epoch seconds) it has answered, or not.",
                        },
                        "checked_at": {
                            "type": "number",
                            "description": "When it was last checked (epoch seconds).",
                        },
                    },
                },
            },
        },
    },
    "Images": {
        "type": "object",
        "required": ["repos"],
        "properties": {
            "repos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["repo", "images"],
                    "properties": {
                        "repo": {"type": "string"},
                        "images": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["image", "sha", "ref", "ref_kind", "built_at"],
                                "properties": {
                                    "image": {"type": "string"},
                                    "sha": {"type": "string"},
                                    "ref": {"type": "string"},
                                    "ref_kind": {"type": "string"},
                                    "built_at": {"type": ["number", "null"]},
                                    "build_id": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
}

BUILD = {"$ref": "#/components/schemas/Build"}
HOOKS_ELSEWHERE = (
    "A POST to any other path under /hooks/ answers 404 with an `error` naming the "
    "receivers that exist."
)
TEXT = {"type": "string"}

PATHS: dict[str, Any] = {
    "/api/v1/builds": {
        "get": {
            "summary": "List builds, newest first",
            "security": SECURED,
            "parameters": [
                {"name": "repo", "in": "query", "schema": {"type": "string", "minLength": 1}},
                {"name": "state", "in": "query", "schema": {"type": "string", "enum": STATES}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "`next_cursor` of the previous page.",
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                },
            ],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/BuildPage"}, "A page of builds."),
                **_errors(400, 401, 403),
            },
        },
        "post": {
            "summary": "Request an image for a repository at a ref",
            "description": "Answers 200 when the image exists (nothing is built) or the "
            "commit's last build failed; 202 when a build was created or joined.",
            "security": SECURED,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/BuildRequest"}}
                },
            },
            "responses": {
                "200": _json(BUILD, "The image exists, or this commit failed before."),
                "202": _json(BUILD, "A build was created, or an identical one joined."),
                **_errors(400, 401, 403, 413, 415, 422, 429, 502, 503),
            },
        },
    },
    "/api/v1/builds/{build_id}": {
        "parameters": [BUILD_ID],
        "get": {
            "summary": "One build",
            "security": SECURED,
            "responses": {"200": _json(BUILD, "The build."), **_errors(400, 401, 403, 404)},
        },
        "delete": {
            "summary": "Cancel a queued or running build",
            "security": SECURED,
            "responses": {
                "200": _json(BUILD, "The cancelled build."),
                **_errors(400, 401, 403, 404, 409),
            },
        },
    },
    "/api/v1/builds/{build_id}/logs": {
        "parameters": [BUILD_ID],
        "get": {
            "summary": "A build's log",
            "description": "With `follow=true`, a text/event-stream of `data: {phase, "
            "message}` events until the build ends, then `event: end` with its state.",
            "security": SECURED,
            "parameters": [
                {
                    "name": "follow",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["true", "false"], "default": "false"},
                }
            ],
            "responses": {
                "200": {
                    "description": "The log.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/BuildLog"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 401, 403, 404),
            },
        },
    },
    "/api/v1/images": {
        "get": {
            "summary": "Images built per repository, newest first",
            "security": SECURED,
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Images"}, "The catalog."),
                **_errors(400, 401, 403),
            },
        }
    },
    "/api/v1/profiles": {
        "get": {
            "summary": "A KubeSpawner profile_list offering the images built here",
            "description": "What the hub's `extraConfig` snippet (docs/hub-extra-config.py) "
            "sets as `c.KubeSpawner.profile_list`; shaped by the `hub_profiles` settings. "
            "`[]` before the first image. The hub's own service token "
            "(`jupyterhub.api_token`) may read it.",
            "security": SECURED,
            "responses": {
                "200": _json({"type": "array", "items": {"type": "object"}}, "The profile list."),
                **_errors(400, 401, 403),
            },
        }
    },
    "/api/v1/quotas/me": {
        "get": {
            "summary": "The caller's quotas: limits, what is used, when each frees",
            "description": "Lists the per-user quotas that are on (none when quotas are off).",
            "security": SECURED,
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Quotas"}, "The quotas."),
                **_errors(400, 401, 403),
            },
        }
    },
    "/build/{provider}/{spec}": {
        "get": {
            "summary": "BinderHub-compatible build stream (build only)",
            "description": "Server-sent events `data: {phase, message, imageName?, "
            "status_code?}` with BinderHub's phases (`waiting`, `fetching`, `building`, "
            "`pushing`, `ready`, `failed`). Needs `Accept: text/event-stream` and "
            "`build_only=true`; problems after the checks below are `failed` events.",
            "security": SECURED,
            "parameters": [
                {
                    "name": "provider",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["gh", "gl", "git"]},
                },
                {
                    "name": "spec",
                    "in": "path",
                    "required": True,
                    "description": "gh: owner/repo/ref; gl and git: the URL-escaped "
                    "namespace or URL, then /ref.",
                    "schema": {"type": "string"},
                },
                {"name": "build_only", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/versions": {
        "get": {
            "summary": "Versions, as BinderHub reports them",
            "responses": {"200": _json({"type": "object"}, "The versions.")},
        }
    },
    "/api/repoproviders": {
        "get": {
            "summary": "The repository providers the build stream serves",
            "responses": {"200": _json({"type": "array"}, "Provider display configs.")},
        }
    },
    "/hooks/github": {
        "post": {
            "summary": "GitHub and Gitea push webhooks (X-Hub-Signature-256)",
            "description": HOOKS_ELSEWHERE,
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": _json({"type": "object"}, "Ignored, or a redelivery."),
                "202": _json({"type": "object"}, "Builds recorded."),
                **_errors(400, 401, 403, 413, 415),
            },
        }
    },
    "/hooks/gitlab": {
        "post": {
            "summary": "GitLab push, tag push and system webhooks (X-Gitlab-Token)",
            "description": HOOKS_ELSEWHERE,
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": _json({"type": "object"}, "Ignored, or a redelivery."),
                "202": _json({"type": "object"}, "Builds recorded."),
                **_errors(400, 401, 403, 413, 415),
            },
        }
    },
    "/hooks/{forge}": {
        "post": {
            "summary": "Any other webhook path: 404 naming the receivers that exist",
            "description": "`github` and `gitlab` are the receivers above (their answers "
            "are listed here too, for a `forge` that names one).",
            "parameters": [
                {
                    "name": "forge",
                    "in": "path",
                    "required": True,
                    "description": "Anything, `/` included.",
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": {"content": {"application/json": {"schema": {}}}},
            "responses": {
                "200": _json({"type": "object"}, "A receiver's answer: ignored."),
                "202": _json({"type": "object"}, "A receiver's answer: builds recorded."),
                **_errors(400, 401, 403, 404, 413, 415),
            },
        }
    },
    "/": {
        "get": {
            "summary": "The page: recent builds and their logs",
            "description": "Behind JupyterHub, a browser without a session is sent to log "
            "in first (302).",
            "responses": {
                "200": {"description": "The page.", "content": {"text/html": {"schema": TEXT}}},
                "302": {"description": "To JupyterHub's login."},
                **_errors(401, 403),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {
                    "description": "The text exposition format.",
                    "content": {"text/plain": {"schema": TEXT}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
        }
    },
    "/health": {
        "get": {
            "summary": "Liveness: the process serves (no dependency is checked)",
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"status": {"type": "string"}}}, "Alive."
                )
            },
        }
    },
    "/health/ready": {
        "get": {
            "summary": "Readiness: this pod answers; the dependencies it shares, reported",
            "description": "Reads the last results of checks that run in the background "
            "(each every 5 s, within 2 s): waits for nothing.",
            "responses": {
                "200": _json(
                    {"$ref": "#/components/schemas/Readiness"},
                    "Ready, or degraded: a shared dependency's check names it and why.",
                ),
                "503": _json(
                    {"$ref": "#/components/schemas/Readiness"},
                    "This pod cannot serve: its state store cannot be read.",
                ),
            },
        }
    },
}


HUB_PATHS: dict[str, Any] = {
    "/oauth_callback": {
        "get": {
            "summary": "JupyterHub's OAuth callback (with `jupyterhub.enabled`)",
            "parameters": [
                {"name": "code", "in": "query", "schema": {"type": "string"}},
                {"name": "state", "in": "query", "schema": {"type": "string"}},
                {"name": "error", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "302": {"description": "Logged in: back to the page that asked."},
                **_errors(400, 403, 503),
            },
        }
    },
    "/logout": {
        "get": {
            "summary": "Forget this browser's session (with `jupyterhub.enabled`)",
            "responses": {"200": _json({"type": "object"}, "Logged out.")},
        }
    },
}
"""The routes ``webhook.hub_auth`` adds when the service sits behind JupyterHub."""


def document(version: str, extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "binderhub-service",
            "version": version,
            "description": "Build Jupyter images from git repositories with repo2docker.",
        },
        "paths": {**PATHS, **(extra_paths or {})},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token of this service, or with "
                    "`jupyterhub.enabled` a JupyterHub API token (also as "
                    "`Authorization: token <t>`).",
                }
            },
        },
    }


async def openapi(request: Request) -> JSONResponse:
    doc: dict[str, Any] = request.app.state.openapi
    return JSONResponse(doc)


routes: list[BaseRoute] = [Route("/openapi.json", openapi, methods=["GET"])]
