"""The one place where errors become HTTP responses.

The status follows from the error's type (``jobs.errors``): permanent errors are 4xx,
temporary ones 5xx (429 for a quota) with ``Retry-After`` from their ``retry_after``.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobs import errors

log = logging.getLogger(__name__)


class BadRequest(errors.PermanentError):
    """Malformed or unauthorised HTTP input (content type, size, JSON shape, a token)
    found by the HTTP layer; ``status_code`` is its 4xx."""

    def __init__(self, message: str, status_code: int = 400, *, bearer: bool = True) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.bearer = bearer
        """For a 401: whether a Bearer token would help (not for webhook signatures)."""


# Most specific first: the first match wins. A BadRequest carries its own status.
STATUS_FOR_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (errors.RepoNotAllowed, 403),
    (errors.RefNotFound, 422),
    (errors.RepoNotReadable, 422),
    (errors.RecordNotFound, 422),
    (errors.RecordTooLarge, 422),
    (errors.HostNotHandled, 422),
    (errors.InvalidRequest, 400),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PermanentError, 400),
    (errors.QuotaExceeded, 429),
    (errors.RegistryAuthError, 502),
    (errors.RepoUnreachable, 503),
    (errors.GitError, 504),
    (errors.TemporaryError, 503),
)


def status_for(error: Exception) -> int:
    """The HTTP status for ``error``: its own for a ``BadRequest``, the first match in
    ``STATUS_FOR_ERROR`` otherwise, 500 for anything else. Pure."""
    if isinstance(error, BadRequest):
        return error.status_code
    for kind, status in STATUS_FOR_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def headers_for(error: Exception) -> dict[str, str]:
    """The headers the answer to ``error`` needs: ``Retry-After`` (seconds) for a
    temporary error, ``WWW-Authenticate`` for a 401 a Bearer token would fix. Pure."""
    if isinstance(error, errors.TemporaryError):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, BadRequest) and error.status_code == 401 and error.bearer:
        return {"WWW-Authenticate": 'Bearer realm="binderhub-service"'}
    return {}


def answer_text(message: str) -> str:
    """``message`` as text any answer can carry: a lone surrogate (which no UTF-8
    encoder takes, and would turn the answer into a 500) becomes U+FFFD. Pure."""
    return message.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def error_response(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": answer_text(message)}, status_code=status_code)


async def handle_service_error(request: Request, exc: Exception) -> Response:
    """Every ``BuildServiceError`` (``BadRequest`` too): ``{"error": message}`` with
    the status and headers its type says; a quota's answer names the quota."""
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, errors.QuotaExceeded):
        return quota_response(exc)
    return JSONResponse(
        {"error": answer_text(str(exc))}, status_code=status, headers=headers_for(exc)
    )


def quota_response(exc: errors.QuotaExceeded) -> JSONResponse:
    """429 with ``Retry-After`` (seconds) and the quota named in the body."""
    body = {
        "error": answer_text(str(exc)),
        "quota": exc.quota,
        "retry_after": exc.retry_after,
        "frees_at": exc.frees_at,
    }
    return JSONResponse(body, status_code=429, headers=headers_for(exc))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.detail, exc.status_code)
    response.headers.update(exc.headers or {})
    return response


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response("internal error; the service log has the details", 500)


EXCEPTION_HANDLERS = {
    errors.BuildServiceError: handle_service_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
