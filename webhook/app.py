"""The Starlette application: routes from each module, one error mapping, one auth seam."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobs.factory import make_service
from jobs.service import BuildService
from jobs.settings import Settings

from . import __version__, api, binderhub, hooks, metrics, openapi, page
from .auth import Auth, TokenAuthenticator
from .errors import EXCEPTION_HANDLERS
from .logs import RequestIdMiddleware

BACKGROUND: list[Callable[[Starlette], Coroutine[Any, Any, None]]] = [*hooks.background]
"""Work that runs beside the server for its whole life (the reconciler)."""


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings, service: BuildService | None = None) -> Starlette:
    """The application. ``service`` is made from ``settings`` unless given (tests)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        svc = service if service is not None else make_service(settings)
        app.state.service = svc
        await svc.start()
        tasks = [asyncio.create_task(work(app)) for work in BACKGROUND]
        try:
            yield {}
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await svc.close()

    app = Starlette(
        routes=[
            *api.routes,
            *hooks.routes,
            *binderhub.routes,
            *metrics.routes,
            *openapi.routes,
            *page.routes,
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[Middleware(RequestIdMiddleware)],
    )
    app.state.settings = settings
    app.state.openapi = openapi.document(__version__)
    app.state.auth = Auth([TokenAuthenticator(settings.auth)], open_read=settings.auth.open_read)
    return app
