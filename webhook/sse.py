"""Server-sent events: framing and keepalive. Pure helpers plus one response type."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

KEEPALIVE_SECONDS = 25.0
SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx (and ingress-nginx) buffer responses unless told not to
    "X-Accel-Buffering": "no",
}


def sse_event(data: Any, event: str | None = None) -> str:
    """One event: ``data: <json>`` (and ``event: <name>``), ended by a blank line."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


KEEPALIVE = ":keepalive\n\n"


async def with_keepalive(
    events: AsyncIterator[str], interval: float = KEEPALIVE_SECONDS
) -> AsyncIterator[str]:
    """``events``, with a comment whenever nothing was sent for ``interval`` seconds
    (proxies close idle connections; the comment is invisible to EventSource)."""
    iterator = events.__aiter__()
    pending: asyncio.Task[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield KEEPALIVE
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()
        else:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()


def event_stream(
    events: AsyncIterator[str], interval: float = KEEPALIVE_SECONDS
) -> StreamingResponse:
    return StreamingResponse(
        with_keepalive(events, interval), media_type="text/event-stream", headers=SSE_HEADERS
    )
