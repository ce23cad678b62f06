"""The OpenAPI document's paths: every route the application serves (``PATHS``), and
those it adds behind JupyterHub (``HUB_PATHS``)."""

from __future__ import annotations

from typing import Any

from .schemas import (
    BUILD_ID,
    SECURED,
    STATES,
    error_responses,
    json_response,
)

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
                "200": json_response(
                    {"$ref": "#/components/schemas/BuildPage"}, "A page of builds."
                ),
                **error_responses(400, 401, 403),
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
                "200": json_response(BUILD, "The image exists, or this commit failed before."),
                "202": json_response(BUILD, "A build was created, or an identical one joined."),
                **error_responses(400, 401, 403, 404, 413, 415, 422, 429, 502, 503),
            },
        },
    },
    "/api/v1/builds/{build_id}": {
        "parameters": [BUILD_ID],
        "get": {
            "summary": "One build",
            "security": SECURED,
            "responses": {
                "200": json_response(BUILD, "The build."),
                **error_responses(400, 401, 403, 404),
            },
        },
        "delete": {
            "summary": "Cancel a queued or running build",
            "security": SECURED,
            "responses": {
                "200": json_response(BUILD, "The cancelled build."),
                **error_responses(400, 401, 403, 404, 409),
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
                **error_responses(400, 401, 403, 404),
            },
        },
    },
    "/api/v1/images": {
        "get": {
            "summary": "Images built per repository, newest first",
            "security": SECURED,
            "responses": {
                "200": json_response({"$ref": "#/components/schemas/Images"}, "The catalog."),
                **error_responses(400, 401, 403),
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
                "200": json_response(
                    {"type": "array", "items": {"type": "object"}}, "The profile list."
                ),
                **error_responses(400, 401, 403),
            },
        }
    },
    "/api/v1/quotas/me": {
        "get": {
            "summary": "The caller's quotas: limits, what is used, when each frees",
            "description": "Lists the per-user quotas that are on (none when quotas are off).",
            "security": SECURED,
            "responses": {
                "200": json_response({"$ref": "#/components/schemas/Quotas"}, "The quotas."),
                **error_responses(400, 401, 403),
            },
        }
    },
    "/api/v1/prepull": {
        "get": {
            "summary": "Per pre-pulled image, how many of the selected nodes have it",
            "description": "The images the pre-pull DaemonSet pulls (the catalog's offer, "
            "newest first), each with the number of selected nodes that have it and that "
            "fail to pull it. 503 when the Kubernetes API does not answer.",
            "security": SECURED,
            "responses": {
                "200": json_response({"$ref": "#/components/schemas/Prepull"}, "Presence."),
                **error_responses(400, 401, 403, 503),
            },
        }
    },
    "/api/v1/retention/deletions": {
        "get": {
            "summary": "What registry retention deleted, newest first",
            "description": "One entry per tag deleted (a manifest's deletion takes every "
            "tag that names it). Retention runs as `binderhub-service retention`, from the "
            "chart's CronJob (`retention.enabled`).",
            "security": SECURED,
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "`next_cursor` of the previous page.",
                    "schema": {
                        "type": "string",
                        "maxLength": 2048,
                        "pattern": "^[A-Za-z0-9_-]+={0,2}$",
                    },
                },
            ],
            "responses": {
                "200": json_response(
                    {"$ref": "#/components/schemas/DeletionPage"}, "A page of deletions."
                ),
                **error_responses(400, 401, 403),
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
                **error_responses(400, 401, 403, 404),
            },
        }
    },
    "/versions": {
        "get": {
            "summary": "Versions, as BinderHub reports them",
            "responses": {"200": json_response({"type": "object"}, "The versions.")},
        }
    },
    "/api/repoproviders": {
        "get": {
            "summary": "The repository providers the build stream serves",
            "responses": {"200": json_response({"type": "array"}, "Provider display configs.")},
        }
    },
    "/hooks/github": {
        "post": {
            "summary": "GitHub and Gitea push webhooks (X-Hub-Signature-256)",
            "description": HOOKS_ELSEWHERE,
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": json_response({"type": "object"}, "Ignored, or a redelivery."),
                "202": json_response({"type": "object"}, "Builds recorded."),
                **error_responses(400, 401, 403, 413, 415),
            },
        }
    },
    "/hooks/gitlab": {
        "post": {
            "summary": "GitLab push, tag push and system webhooks (X-Gitlab-Token)",
            "description": HOOKS_ELSEWHERE,
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": json_response({"type": "object"}, "Ignored, or a redelivery."),
                "202": json_response({"type": "object"}, "Builds recorded."),
                **error_responses(400, 401, 403, 413, 415),
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
                "200": json_response({"type": "object"}, "A receiver's answer: ignored."),
                "202": json_response({"type": "object"}, "A receiver's answer: builds recorded."),
                **error_responses(400, 401, 403, 404, 413, 415),
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
                **error_responses(401, 403),
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
            "responses": {"200": json_response({"type": "object"}, "The OpenAPI document.")},
        }
    },
    "/health": {
        "get": {
            "summary": "Liveness: the process serves (no dependency is checked)",
            "responses": {
                "200": json_response(
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
                "200": json_response(
                    {"$ref": "#/components/schemas/Readiness"},
                    "Ready, or degraded: a shared dependency's check names it and why.",
                ),
                "503": json_response(
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
                **error_responses(400, 403, 503),
            },
        }
    },
    "/logout": {
        "get": {
            "summary": "Forget this browser's session (with `jupyterhub.enabled`)",
            "responses": {"200": json_response({"type": "object"}, "Logged out.")},
        }
    },
}
"""The routes ``webhook.hub_auth`` adds when the service sits behind JupyterHub."""
