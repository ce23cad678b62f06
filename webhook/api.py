"""The JSON build API under /api/v1."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from jobs.service import BuildService

from .auth import READ, WRITE, require
from .body import parse_json_object, read_body, take_fields
from .errors import BadRequest

BUILD_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def service_of(request: Request) -> BuildService:
    service: BuildService = request.app.state.service
    return service


def build_id_of(request: Request) -> str:
    build_id: str = request.path_params["build_id"]
    if not BUILD_ID_RE.match(build_id):
        raise BadRequest("invalid build id: expected 32 lower-case hex digits")
    return build_id


async def create_build(request: Request) -> JSONResponse:
    await require(request, WRITE)
    body = await read_body(request)
    fields = take_fields(
        parse_json_object(body, request.headers.get("content-type")),
        required={"repo": str},
        optional={"ref": str, "force": bool},
    )
    outcome = await service_of(request).request(
        fields["repo"], fields.get("ref"), trigger="api", force=fields.get("force", False)
    )
    status = 202 if outcome.status in ("created", "joined") else 200
    return JSONResponse(outcome.to_json(), status_code=status)


async def get_build(request: Request) -> JSONResponse:
    await require(request, READ)
    build = service_of(request).get(build_id_of(request))
    return JSONResponse(build.to_json())


routes: list[BaseRoute] = [
    Route("/api/v1/builds", create_build, methods=["POST"]),
    Route("/api/v1/builds/{build_id}", get_build, methods=["GET"]),
]
