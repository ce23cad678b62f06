"""The BinderHub-compatible build stream (issue 3)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
