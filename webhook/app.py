"""The Starlette application: routes from each module, one error mapping, one auth seam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from jobs import readiness
from jobs.factory import make_service
from jobs.service import BuildService
from jobs.settings import Settings

from . import (
    __version__,
    api,
    binderhub,
    hooks,
    hub_api,
    hub_auth,
    metrics,
    openapi,
    page,
    profiles,
)
from .auth import Auth, Authenticator, LoginRequired, TokenAuthenticator
from .errors import EXCEPTION_HANDLERS
from .logs import RequestIdMiddleware


async def health(request: Request) -> JSONResponse:
    """Liveness: 200 while the process serves. It checks no dependency on purpose: a
    registry or daemon that is down must not get the pod restarted."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 while this pod can answer (its store is readable), also when a
    shared dependency is down (``degraded``, named in the body); 503 only when the pod
    itself cannot serve. Reads the last results of the background checks
    (``jobs.readiness``): waits for nothing."""
    monitor: readiness.DependencyMonitor = request.app.state.readiness
    answer = monitor.answer()
    return JSONResponse(answer, status_code=503 if answer["status"] == "unavailable" else 200)


PROBES: list[BaseRoute] = [
    Route("/health", health, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
]
"""Served at the root as well when there is a base path, for probes that reach the
pod directly."""


async def send_to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return exc.response


def under_prefix(base_path: str, routes: list[BaseRoute]) -> list[BaseRoute]:
    """``routes`` served under ``base_path`` (the hub's proxy passes its prefix on), and
    the probes at the root as well."""
    if base_path == "/":
        return routes
    return [Mount(base_path.rstrip("/"), routes=routes), *PROBES]


def create_app(settings: Settings, service: BuildService | None = None) -> Starlette:
    """The application. ``service`` is made from ``settings`` unless given (tests).

    Raises ``ConfigError`` for JupyterHub settings that cannot work."""
    base_path = hub_auth.resolve_base_path(settings)
    authenticators: list[Authenticator] = [TokenAuthenticator(settings.auth)]
    hub: hub_auth.HubAuthenticator | None = None
    if settings.jupyterhub.enabled:
        hub = hub_auth.HubAuthenticator(hub_api.HubConfig.resolve(settings.jupyterhub, base_path))
        authenticators.append(hub)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        svc = service if service is not None else make_service(settings)
        app.state.service = svc
        checks = readiness.service_checks(svc)
        if hub is not None:
            checks["jupyterhub"] = hub.client.check
        monitor = readiness.DependencyMonitor(checks, pod_checks=readiness.pod_checks(svc))
        app.state.readiness = monitor
        await svc.start()  # and its work beside requests: log retention, the reconciler
        await monitor.start()
        try:
            yield {}
        finally:
            await monitor.stop()
            await svc.close()  # sends the last commit statuses too
            if hub is not None:
                await hub.client.aclose()

    routes: list[BaseRoute] = [
        *api.routes,
        *profiles.routes,
        *hooks.routes,
        *binderhub.routes,
        *metrics.routes,
        *openapi.routes,
        *page.routes,
        *(hub_auth.routes(hub) if hub is not None else []),
        *PROBES,
    ]
    app = Starlette(
        routes=under_prefix(base_path, routes),
        exception_handlers={**EXCEPTION_HANDLERS, LoginRequired: send_to_login},
        lifespan=lifespan,
        middleware=[Middleware(RequestIdMiddleware)],
    )
    app.state.settings = settings
    app.state.openapi = openapi.document(
        __version__, openapi.HUB_PATHS if hub is not None else None
    )
    if base_path != "/":
        app.state.openapi = {**app.state.openapi, "servers": [{"url": base_path.rstrip("/")}]}
    app.state.auth = Auth(authenticators, open_read=settings.auth.open_read, login=hub)
    return app
