"""Reading requests: the path as sent; bodies (size cap, content type, UTF-8, JSON
object), before any work.

What reaches the handlers is text that can be stored, logged and quoted back: bodies are
strict UTF-8 read by ``jobs.json_input.read_json`` (no lone surrogates, no ``NaN``,
nesting at most ``MAX_DEPTH`` deep); Starlette decodes paths and query strings with
``errors="replace"`` (``%ED%A0%80`` and overlong forms such as ``%C0%AF`` become U+FFFD)
and headers as Latin-1. Numbers in text (``Content-Length``, ``limit``) are ASCII
digits only: ``str.isdigit`` also takes ``²``, which ``int`` refuses.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import HTTPConnection, Request

from jobs.json_input import InvalidJSON, read_json

from .errors import BadRequest

DEFAULT_MAX_BODY = 1024 * 1024
DIGITS = re.compile(r"[0-9]{1,19}")
"""A whole number as HTTP and our query parameters write it (``fullmatch``)."""


def sent_path(connection: HTTPConnection) -> str:
    """The request's path as the client sent it: not percent-decoded, so that the %2F
    inside a BinderHub git spec stays apart from the path's own slashes."""
    raw = connection.scope.get("raw_path")
    return raw.decode("latin-1") if raw else connection.url.path


async def read_body(request: Request, limit: int = DEFAULT_MAX_BODY) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not DIGITS.fullmatch(declared):
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise BadRequest(f"body is larger than {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body is larger than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes, content_type: str | None, hint: str = "") -> dict[str, Any]:
    """``body`` as a JSON object (read by ``jobs.json_input.read_json``), or a BadRequest
    that says what is wrong with it; ``hint`` is added to the answer for a wrong content
    type."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadRequest(
            f"Content-Type must be application/json, not {media_type or '(none)'}{hint}", 415
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not valid UTF-8") from None
    try:
        data = read_json(text)
    except InvalidJSON as e:
        raise BadRequest(f"body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def take_fields(
    data: dict[str, Any], required: dict[str, type], optional: dict[str, type]
) -> dict[str, Any]:
    """Check a JSON object's fields: the required ones present, every one of its type,
    none unknown."""
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, kind in {**required, **optional}.items():
        if name not in data:
            if name in required:
                raise BadRequest(f"missing field: {name}")
            continue
        value = data[name]
        if value is None and name in optional:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadRequest(f"field {name} must be a {kind.__name__}")
        out[name] = value
    return out
