"""The OpenAPI document's schemas (``components.schemas``) and the pieces its paths share:
parameters, the JSON and error responses."""

from __future__ import annotations

from typing import Any

from jobs.sources.providers import PROVIDERS

ERROR = {"$ref": "#/components/schemas/Error"}
BUILD_ID = {
    "name": "build_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
STATES = ["queued", "running", "built", "failed", "cancelled", "superseded"]


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "The request is malformed; `error` says how.",
        401: "No token, or an invalid one (for a hook: its signature or token).",
        403: "The token lacks the scope, or the repository is not allowed.",
        404: "No such build (for a build request: no such provider).",
        409: "The build has finished already.",
        405: "Not a method of this path.",
        413: "The body is too large.",
        415: "The body is not JSON.",
        422: "The repository or ref does not exist.",
        429: "A quota is used up; `Retry-After` says when to ask again.",
        502: "The registry refused our credentials.",
        503: "The registry, a repository or the Kubernetes API could not be reached; try again.",
    }
    return {str(code): json_response(ERROR, reasons[code]) for code in codes}


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
    "Prepull": {
        "type": "object",
        "required": ["enabled", "nodes", "images"],
        "properties": {
            "enabled": {"type": "boolean", "description": "Whether pre-pull is on."},
            "nodes": {
                "type": "integer",
                "minimum": 0,
                "description": "Nodes the pre-pull DaemonSet selects.",
            },
            "images": {
                "type": "array",
                "description": "The images it pulls, newest build first.",
                "items": {
                    "type": "object",
                    "required": ["image", "present", "failing", "nodes"],
                    "properties": {
                        "image": {"type": "string"},
                        "present": {"type": "integer", "minimum": 0},
                        "failing": {"type": "integer", "minimum": 0},
                        "nodes": {"type": "integer", "minimum": 0},
                    },
                },
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
        "description": "What to build: repo (and ref), or BinderHub's provider and spec, "
        "never both (400 naming the conflict).",
        "oneOf": [{"required": ["repo"]}, {"required": ["provider", "spec"]}],
        "additionalProperties": False,
        "properties": {
            "repo": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2048,
                "description": "Repository URL (https, http, git, ssh), a shortcut "
                "gh/OWNER/REPO/REF or gl/NAMESPACE/PROJECT/REF, a forge page (tree, blob, "
                "commit, tag, pull request), or a Zenodo or Figshare DOI or record page.",
            },
            "ref": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "description": "Branch, tag or full commit SHA; with repo only.",
            },
            "provider": {
                "type": "string",
                "enum": list(PROVIDERS),
                "description": "A provider as BinderHub names it, with spec: the body asks "
                "what the stream's /build/<provider>/<spec> does. Another name is 404, "
                "naming the providers offered.",
            },
            "spec": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2048,
                "description": "The provider's spec as BinderHub spells it: "
                "gh OWNER/REPO/REF, gl URL-escaped-NAMESPACE/REF, git "
                "URL-escaped-URL/REF, gist USER/ID[/REF], zenodo or figshare a DOI or "
                "record URL (e.g. 10.5281/zenodo.3242074). A spec not of its provider's "
                "form is 400, naming the form.",
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
            "ref_kind": {
                "type": "string",
                "enum": ["branch", "tag", "commit", "head", "other", "record"],
            },
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
            "provider": {
                "type": "string",
                "description": "Where the content comes from: git, or a content provider "
                "(zenodo, figshare, dataverse, hydroshare, ckan, swh, hg) whose record's page "
                "is repo and version sha.",
            },
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
    "DeletionPage": {
        "type": "object",
        "required": ["deletions", "next_cursor"],
        "properties": {
            "deletions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "image",
                        "repository",
                        "digest",
                        "deleted_at",
                        "run_id",
                        "freed_bytes",
                    ],
                    "properties": {
                        "image": {"type": "string", "description": "host/repository:tag"},
                        "repository": {"type": "string"},
                        "digest": {"type": "string", "description": "The manifest deleted."},
                        "deleted_at": {"type": "number", "description": "Unix seconds."},
                        "run_id": {"type": "string"},
                        "freed_bytes": {
                            "type": ["integer", "null"],
                            "description": "What deleting the manifest freed at most (the "
                            "same on each of its tags); null when the registry could not say.",
                        },
                    },
                },
            },
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
