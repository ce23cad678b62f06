"""Every route the application serves is in its OpenAPI document, and nothing else is:
the document is what schemathesis and the fuzz tests (tests/integration/test_openapi.py,
test_fuzz.py) send requests from, so a route left out of it would be left out of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from jobs.settings import load_settings
from webhook.app import create_app

Operation = tuple[str, str]


def served(routes: list[BaseRoute], prefix: str = "") -> set[Operation]:
    """(method, OpenAPI path) of each route, ``{name:path}`` written ``{name}``; HEAD,
    which Starlette adds to every GET, is left out."""
    found: set[Operation] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= served(list(route.routes), prefix + route.path)
        else:
            assert isinstance(route, Route), route
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path)
            found |= {(method, path) for method in route.methods or () if method != "HEAD"}
    return found


def documented(app: Starlette) -> set[Operation]:
    document = app.state.openapi
    base = document.get("servers", [{"url": ""}])[0]["url"]
    return {
        (method.upper(), base + path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


@pytest.mark.parametrize("hub", [False, True], ids=["alone", "behind JupyterHub"])
def test_every_route_is_documented_and_nothing_else(tmp_path: Path, hub: bool) -> None:
    values: dict[str, object] = {"state_path": tmp_path / "state.sqlite"}
    if hub:
        values |= {
            "base_path": "/services/binder/",
            "jupyterhub": {
                "enabled": True,
                "api_url": "http://127.0.0.1:9/hub/api",
                "api_token": "service-secret",
            },
        }
    app = create_app(load_settings(None, **values))
    routes = served(app.routes)
    # the probes are served at the root too, for probes that reach the pod directly
    probes = {("GET", "/health"), ("GET", "/health/ready")}
    assert routes - probes == documented(app) - probes
    base = "/services/binder" if hub else ""
    assert {
        ("POST", f"{base}/hooks/github"),
        ("POST", f"{base}/hooks/gitlab"),
        ("POST", f"{base}/hooks/{{forge}}"),
        ("GET", f"{base}/build/{{provider}}/{{spec}}"),
        ("GET", f"{base}/metrics"),
    } <= routes
    assert (("GET", f"{base}/oauth_callback") in routes) is hub
