"""The OpenAPI document served at /openapi.json.

Written out rather than generated from docstrings: it is a contract, and
schemathesis tests the running service against it. Every route the application serves
is in it (``tests/unit/test_openapi_routes.py`` holds the two together): the API, the
hooks (and the 404 of ``/hooks/`` paths that are none), the BinderHub stream, the page,
``/metrics``, this document and the probes; with JupyterHub, ``HUB_PATHS`` too.
``schemas``: its components; ``paths``: its paths; here, the document and its route.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .paths import HUB_PATHS, PATHS
from .schemas import SCHEMAS

__all__ = ["HUB_PATHS", "document", "routes"]


def document(version: str, extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document for this service's ``version``, with ``extra_paths`` (``HUB_PATHS``
    behind JupyterHub)."""
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
