"""The Starlette application."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobs.factory import make_service
from jobs.service import BuildService
from jobs.settings import Settings

from .body import parse_json_object, read_body, take_fields
from .errors import EXCEPTION_HANDLERS, BadRequest

BUILD_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def service_of(request: Request) -> BuildService:
    service: BuildService = request.app.state.service
    return service


async def create_build(request: Request) -> JSONResponse:
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


def _build_id(request: Request) -> str:
    build_id: str = request.path_params["build_id"]
    if not BUILD_ID_RE.match(build_id):
        raise BadRequest("invalid build id: expected 32 lower-case hex digits")
    return build_id


async def get_build(request: Request) -> JSONResponse:
    build = service_of(request).get(_build_id(request))
    return JSONResponse(build.to_json())


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings, service: BuildService | None = None) -> Starlette:
    """The application. ``service`` is made from ``settings`` unless given (tests)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        svc = service if service is not None else make_service(settings)
        app.state.service = svc
        await svc.start()
        try:
            yield {}
        finally:
            await svc.close()

    routes = [
        Route("/api/v1/builds", create_build, methods=["POST"]),
        Route("/api/v1/builds/{build_id}", get_build, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
