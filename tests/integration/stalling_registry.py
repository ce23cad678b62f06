"""A proxy in front of a real registry that never answers some requests, and forwards
everything else unchanged (issue 20, item 3: a registry that accepts the image's push
but never answers the BuildKit cache export).

``CACHE_MANIFEST_PUTS`` holds the request that ends a registry cache export: the PUT
of the ``buildcache`` tag's manifest (``jobs.repo2docker.command.CACHE_TAG``). The cache's
blobs share the image's repository and cannot be told from the image's own, so they
pass. A stalled request is held open, with nothing sent, until the proxy stops.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import Request
from starlette.responses import Response

from testkit.components import Registry

from .failing_registry import FailingRegistry

CACHE_MANIFEST_PUTS = re.compile(r"^/v2/.+/manifests/buildcache$")


class StallingRegistry(FailingRegistry):
    """The proxy; ``stalled`` counts the requests it is holding (or held)."""

    def __init__(self, upstream: Registry, stall: re.Pattern[str] = CACHE_MANIFEST_PUTS) -> None:
        super().__init__(upstream)
        self.failing = False
        self.stall = stall
        self.stalled = 0
        # held requests never end by themselves: do not wait for them at shutdown
        self._server.config.timeout_graceful_shutdown = 1

    async def _forward(self, request: Request) -> Response:
        if request.method in ("PUT", "POST", "PATCH") and self.stall.match(request.url.path):
            self.stalled += 1
            await asyncio.Event().wait()  # until the server is stopped
        return await super()._forward(request)


@contextmanager
def stalling_registry(
    upstream: Registry, stall: re.Pattern[str] = CACHE_MANIFEST_PUTS
) -> Iterator[StallingRegistry]:
    """A started proxy in front of ``upstream`` that holds the requests ``stall`` matches."""
    proxy = StallingRegistry(upstream, stall)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
