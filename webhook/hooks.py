"""GitHub, Gitea and GitLab push webhooks (issue 3)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
