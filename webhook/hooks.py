"""GitHub, Gitea and GitLab push webhooks (issue 3)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
background: list[Callable[[Starlette], Coroutine[Any, Any, None]]] = []
