"""What every route reads from a request besides its body: the service and the settings
the app was made with, a build id from the path, the query's parameters. Each one
refuses bad input with a ``BadRequest`` naming it."""

from __future__ import annotations

from starlette.requests import Request

from jobs.coordinator.build_requests import BUILD_ID_RE
from jobs.service import BuildService
from jobs.settings import Settings

from .errors import BadRequest


def service_of(request: Request) -> BuildService:
    """The app's ``BuildService`` (set when the app starts: ``webhook.app``)."""
    service: BuildService = request.app.state.service
    return service


def settings_of(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


def build_id_of(request: Request) -> str:
    """The path's ``build_id``; 400 unless it looks like one (32 lower-case hex digits)."""
    build_id: str = request.path_params["build_id"]
    if not BUILD_ID_RE.match(build_id):
        raise BadRequest("invalid build id: expected 32 lower-case hex digits")
    return build_id


def query_params(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query as a dict; 400 naming any parameter not in ``allowed`` or repeated."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    for key in request.query_params:
        if len(request.query_params.getlist(key)) > 1:
            raise BadRequest(f"query parameter {key} given more than once")
    return dict(request.query_params)
