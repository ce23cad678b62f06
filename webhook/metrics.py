"""/metrics, and the metrics of the HTTP layer.

Registry retention runs in another process (the chart's CronJob, issue 26): its figures
are read from the store's record of deletions at each scrape, so that every replica
answers the same totals, and a counter survives restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from jobs.model import DeletionTotals
from jobs.service import BuildService

log = logging.getLogger(__name__)

WEBHOOK_DELIVERIES = Counter(
    "binderhub_service_webhook_deliveries_total",
    "Webhook deliveries, by provider (github, gitea, gitlab) and outcome (accepted, "
    "ignored, duplicate, rejected).",
    ["provider", "outcome"],
)


class RetentionTotals(Collector):
    """The store's ``DeletionTotals`` as counters (``*_total``)."""

    def __init__(self, totals: DeletionTotals) -> None:
        self.totals = totals

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "binderhub_service_retention_deleted",
            "Images (tags) registry retention deleted, from its record.",
            value=self.totals.images,
        )
        yield CounterMetricFamily(
            "binderhub_service_retention_deleted_manifests",
            "Manifests registry retention deleted (each takes every tag that names it).",
            value=self.totals.manifests,
        )
        yield CounterMetricFamily(
            "binderhub_service_retention_freed_bytes",
            "Bytes registry retention freed at most: the blobs of the deleted manifests "
            "that no kept one holds (the registry's garbage collection frees them).",
            value=self.totals.freed_bytes,
        )


def retention_metrics(totals: DeletionTotals) -> bytes:
    """The retention counters in the text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RetentionTotals(totals))
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    body = generate_latest()
    service: BuildService | None = getattr(request.app.state, "service", None)
    if service is not None:
        try:
            totals = await asyncio.to_thread(service.retention_totals)
        except Exception as e:  # a scrape answers with what it has: the store may be down
            log.warning("the retention totals were not read for /metrics: %s", e)
        else:
            body += retention_metrics(totals)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes: list[BaseRoute] = [Route("/metrics", metrics, methods=["GET"])]
