"""The page at /: recent builds, a live log, and a form to ask for a build. It holds no
data itself; its script reads the API with the token the person gives (or none, with
``auth.open_read``), and posts what the person types to ``POST /api/v1/builds`` as
``repo``, so every form the API takes (a pasted URL, a DOI) builds from the page."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from .auth import READ, Auth

PAGE = files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(request: Request) -> HTMLResponse:
    auth: Auth = request.app.state.auth
    if auth.login is not None:
        # Behind JupyterHub: log the browser in first, so the page's own API calls
        # carry the session cookie.
        await auth.require(request, READ, browser=True)
    return HTMLResponse(PAGE, headers=SECURITY_HEADERS)


routes: list[BaseRoute] = [Route("/", index, methods=["GET"])]
