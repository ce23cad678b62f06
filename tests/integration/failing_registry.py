"""A proxy in front of a real registry that answers 500 to some writes while
``failing`` is set, and forwards everything else unchanged (issue #12, item 1).

``BLOB_UPLOADS`` is the fault of the issue: dockerd retries a failed layer upload
five times, 5 s apart and longer (about 50 s in all), before it gives up with
"received unexpected HTTP status: 500". ``MANIFEST_PUTS`` fails the push's last
request, which dockerd does not retry: the same error, at once, for tests.

The Host header is forwarded as sent, so the registry's upload ``Location`` URLs
point back at the proxy.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from testkit.components import Registry, free_port, wait_until

BLOB_UPLOADS = re.compile(r"^/v2/.+/blobs/uploads(/|$)")
MANIFEST_PUTS = re.compile(r"^/v2/.+/manifests/[^/]+$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class FailingRegistry:
    """The proxy; ``host`` is what image names use, ``failing`` switches the fault."""

    def __init__(self, upstream: Registry, fail: re.Pattern[str] = BLOB_UPLOADS) -> None:
        self.upstream = upstream
        self.fail = fail
        self.failing = True
        self.refused = 0
        self.host = f"127.0.0.1:{free_port()}"
        self._client = httpx.AsyncClient()  # replaced in the server's own event loop
        app = Starlette(
            routes=[Route("/{path:path}", self._forward, methods=_METHODS)],
            lifespan=self._lifespan,
        )
        port = int(self.host.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log(self) -> str:
        return self.upstream.log()

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        timeout = httpx.Timeout(300.0)
        async with httpx.AsyncClient(base_url=self.upstream.url, timeout=timeout) as client:
            self._client = client
            yield

    async def _forward(self, request: Request) -> Response:
        writes = request.method in ("POST", "PUT", "PATCH")
        if self.failing and writes and self.fail.match(request.url.path):
            self.refused += 1
            return JSONResponse({"errors": [{"code": "UNKNOWN", "message": "boom"}]}, 500)
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in _HOP_BY_HOP]
        upstream = self._client.build_request(
            request.method,
            request.url.path,
            params=request.url.query or None,
            headers=headers,
            content=request.stream(),
        )
        answer = await self._client.send(upstream, stream=True)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers=kept,
            background=BackgroundTask(answer.aclose),
        )

    def start(self) -> None:
        self._thread.start()
        wait_until(lambda: self._server.started)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@contextmanager
def failing_registry(
    upstream: Registry, fail: re.Pattern[str] = BLOB_UPLOADS
) -> Iterator[FailingRegistry]:
    """A started proxy in front of ``upstream``, failing until told otherwise."""
    proxy = FailingRegistry(upstream, fail)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
