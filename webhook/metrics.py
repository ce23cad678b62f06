"""/metrics, and the metrics of the HTTP layer."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

WEBHOOK_DELIVERIES = Counter(
    "binderhub_service_webhook_deliveries_total",
    "Webhook deliveries, by provider (github, gitea, gitlab) and outcome (accepted, "
    "ignored, duplicate, rejected).",
    ["provider", "outcome"],
)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes: list[BaseRoute] = [Route("/metrics", metrics, methods=["GET"])]
