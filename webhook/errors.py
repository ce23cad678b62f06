"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobs import errors
from jobs.forges.errors import ForgeRateLimited

log = logging.getLogger(__name__)


class BadRequest(Exception):
    """Malformed HTTP input (content type, size, JSON shape) found by the HTTP layer."""

    def __init__(self, message: str, status_code: int = 400, *, bearer: bool = True) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.bearer = bearer
        """For a 401: whether a Bearer token would help (not for webhook signatures)."""


# Most specific first: the first match wins.
STATUS_FOR_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (errors.RepoNotAllowed, 403),
    (errors.RefNotFound, 422),
    (errors.InvalidRequest, 400),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.QuotaExceeded, 429),
    (errors.RepoUnreachable, 422),
    (errors.RegistryAuthError, 502),
    (errors.RegistryError, 503),
    (errors.GitError, 504),
    (errors.TemporaryError, 503),
)


def status_for(error: Exception) -> int:
    for kind, status in STATUS_FOR_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def error_response(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


async def handle_service_error(request: Request, exc: Exception) -> Response:
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, errors.QuotaExceeded):
        return quota_response(exc)
    response = error_response(str(exc), status)
    if isinstance(exc, ForgeRateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def quota_response(exc: errors.QuotaExceeded) -> JSONResponse:
    """429 with ``Retry-After`` (seconds) and the quota named in the body."""
    body = {
        "error": str(exc),
        "quota": exc.quota,
        "retry_after": exc.retry_after,
        "frees_at": exc.frees_at,
    }
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(exc.retry_after)})


async def handle_bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    response = error_response(str(exc), exc.status_code)
    if exc.status_code == 401 and exc.bearer:
        response.headers["WWW-Authenticate"] = 'Bearer realm="binderhub-service"'
    return response


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
    BadRequest: handle_bad_request,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
