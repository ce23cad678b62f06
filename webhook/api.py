"""The JSON build API under /api/v1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from jobs.coordinator.build_requests import BuildRequest, body_request, build_query
from jobs.model import BuildState, catalog_json
from jobs.retention.records import deletion_query, page_of
from jobs.service import BuildService

from .auth import READ, WRITE, require
from .body import parse_json_object, read_body, take_fields
from .context import build_id_of, query_params, service_of
from .errors import BadRequest
from .sse import event_stream, sse_event


async def create_build(request: Request) -> JSONResponse:
    principal = await require(request, WRITE)
    body = await read_body(request)
    fields = take_fields(
        parse_json_object(body, request.headers.get("content-type")),
        required={},
        optional={"repo": str, "ref": str, "provider": str, "spec": str, "force": bool},
    )
    repo, ref = body_request(
        repo=fields.get("repo"),
        ref=fields.get("ref"),
        provider=fields.get("provider"),
        spec=fields.get("spec"),
    )
    outcome = await service_of(request).receive_request(
        BuildRequest(
            repo,
            ref,
            trigger="api",
            force=fields.get("force", False),
            requester=principal.name,
        )
    )
    status = 202 if outcome.status in ("created", "joined") else 200
    return JSONResponse(outcome.to_json(), status_code=status)


async def get_build(request: Request) -> JSONResponse:
    await require(request, READ)
    build = service_of(request).get(build_id_of(request))
    return JSONResponse(build.to_json())


async def list_builds(request: Request) -> JSONResponse:
    await require(request, READ)
    query = query_params(request, {"repo", "state", "limit", "cursor"})
    service = service_of(request)
    wanted = build_query(
        repo=query.get("repo"),
        state=query.get("state"),
        limit=query.get("limit"),
        cursor=query.get("cursor"),
        allow_file=service.settings.allow_file_urls,
    )
    page = service.list_builds(wanted)
    return JSONResponse(
        {"builds": [build.to_json() for build in page.builds], "next_cursor": page.next_cursor}
    )


async def cancel_build(request: Request) -> JSONResponse:
    await require(request, WRITE)
    build = await service_of(request).cancel(build_id_of(request))
    return JSONResponse(build.to_json())


async def build_logs(request: Request) -> Response:
    await require(request, READ)
    query = query_params(request, {"follow"})
    follow = query.get("follow", "false")
    if follow not in ("true", "false"):
        raise BadRequest("follow must be true or false")
    service = service_of(request)
    if follow == "false":
        build, lines = service.logs(build_id_of(request))
        return JSONResponse(
            {
                "id": build.id,
                "state": str(build.state),
                "lines": [{"phase": phase, "message": message} for phase, message in lines],
            }
        )
    build = service.get(build_id_of(request))
    return event_stream(_follow(service, build.id))


async def _follow(service: BuildService, build_id: str) -> AsyncIterator[str]:
    """The stored log, then new lines as they come, then an ``end`` event with the state
    (``BuildService.watch`` guarantees no line is lost or repeated between the two)."""
    async for event in service.watch(build_id):
        if event.kind == "log":
            yield sse_event({"phase": event.phase, "message": event.message})
        elif event.state is not None and BuildState(event.state).finished:
            yield sse_event({"state": event.state, "error": event.message or None}, event="end")


async def list_images(request: Request) -> JSONResponse:
    """Images built for each repository, newest first."""
    await require(request, READ)
    query_params(request, set())
    return JSONResponse(catalog_json(service_of(request).catalog()))


async def my_quotas(request: Request) -> JSONResponse:
    """The caller's quotas that are on, what it used and when each frees (issue 16)."""
    principal = await require(request, READ)
    query_params(request, set())
    quotas = service_of(request).quota_status(principal.name)
    return JSONResponse(
        {"requester": principal.name, "quotas": [quota.to_json() for quota in quotas]}
    )


async def prepull_presence(request: Request) -> JSONResponse:
    """Per image the DaemonSet pre-pulls, on how many of the selected nodes it is
    (issue 26). With pre-pull off: ``enabled`` false and no image."""
    await require(request, READ)
    query_params(request, set())
    keeper = service_of(request).prepull
    if keeper is None:
        return JSONResponse({"enabled": False, "nodes": 0, "images": []})
    state = await keeper.current()
    return JSONResponse({"enabled": True, **state.to_json()})


async def retention_deletions(request: Request) -> JSONResponse:
    """What registry retention deleted, newest first, a page at a time (issue 26)."""
    await require(request, READ)
    query = query_params(request, {"limit", "cursor"})
    wanted = deletion_query(limit=query.get("limit"), cursor=query.get("cursor"))
    service = service_of(request)
    # one more than the page tells whether another page follows
    rows = await asyncio.to_thread(service.retention_deletions, wanted.limit + 1, wanted.after)
    return JSONResponse(page_of(rows, wanted.limit).to_json())


def by_method(**handlers: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """One endpoint for several methods, so that a 405 lists all of them in Allow."""

    async def endpoint(request: Request) -> Response:
        return await handlers[request.method.lower()](request)

    return endpoint


routes: list[BaseRoute] = [
    Route(
        "/api/v1/builds",
        by_method(get=list_builds, post=create_build),
        methods=["GET", "POST"],
    ),
    Route(
        "/api/v1/builds/{build_id}",
        by_method(get=get_build, delete=cancel_build),
        methods=["GET", "DELETE"],
    ),
    Route("/api/v1/builds/{build_id}/logs", build_logs, methods=["GET"]),
    Route("/api/v1/images", list_images, methods=["GET"]),
    Route("/api/v1/quotas/me", my_quotas, methods=["GET"]),
    Route("/api/v1/prepull", prepull_presence, methods=["GET"]),
    Route("/api/v1/retention/deletions", retention_deletions, methods=["GET"]),
]
