"""GitHub, Gitea and GitLab push webhooks (issue 3): ``POST /hooks/github`` and
``POST /hooks/gitlab``. (The reconciler that catches the pushes whose webhook was lost
is the pipeline's: ``jobs.coordinator.reconcile``, started by ``BuildService.start``.)
A POST to any other ``/hooks/…`` path answers 404 naming the receivers that exist
(issue 12); other methods on ``/hooks/…`` answer 405 with ``Allow: POST``.

A delivery is answered within the forge's patience (10 s) and without network I/O: it
is authenticated and parsed here (``deliveries``), then received by the pipeline
(``BuildService.receive_push``), which decides which refs build and commits the builds
with the delivery's record before this answers. Nothing waits for a build. Refused
deliveries (4xx) store nothing; every 2xx answer is remembered under the delivery id,
so a redelivery gets the same answer and changes nothing.
See docs/webhooks.md for the answers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from jobs.coordinator.push import Ignored, Push, PushAnswer, PushRequest

from . import deliveries
from .body import parse_json_object, read_body
from .context import service_of, settings_of
from .deliveries import Delivery, Provider
from .errors import BadRequest
from .metrics import WEBHOOK_DELIVERIES

Parser = Callable[[str, dict[str, Any]], Push | Ignored]


async def github(request: Request) -> JSONResponse:
    """``POST /hooks/github``: GitHub deliveries, and Gitea's (they sign the same way)."""
    provider = deliveries.github_provider(request.headers)
    return await _counted(provider, _github(request, provider))


async def _github(request: Request, provider: Provider) -> tuple[JSONResponse, str]:
    webhooks = settings_of(request).webhooks
    if webhooks.github_secret is None:
        raise BadRequest("GitHub webhooks are not configured", 403)
    body = await read_body(request, webhooks.max_body_bytes)
    deliveries.verify_github_signature(
        webhooks.github_secret.get_secret_value().encode(), body, request.headers, provider
    )
    delivery = deliveries.github_delivery(request.headers, provider)
    return await _receive(request, delivery, body, deliveries.parse_github)


async def gitlab(request: Request) -> JSONResponse:
    """``POST /hooks/gitlab``: GitLab project and system hooks."""
    return await _counted("gitlab", _gitlab(request))


async def _gitlab(request: Request) -> tuple[JSONResponse, str]:
    webhooks = settings_of(request).webhooks
    if webhooks.gitlab_token is None:
        raise BadRequest("GitLab webhooks are not configured", 403)
    deliveries.verify_gitlab_token(
        webhooks.gitlab_token.get_secret_value().encode(), request.headers.get("x-gitlab-token")
    )
    body = await read_body(request, webhooks.max_body_bytes)
    delivery = deliveries.gitlab_delivery(request.headers)
    return await _receive(request, delivery, body, deliveries.parse_gitlab)


RECEIVERS = (("github", "GitHub, Gitea"), ("gitlab", "GitLab"))
"""The webhook receivers: the path segment after ``/hooks/`` and the forges it serves."""


async def unknown(request: Request) -> JSONResponse:
    """``POST /hooks/{anything else}``: 404 naming the receivers that exist, so that a
    webhook set up for a forge we do not serve (Bitbucket, say) says so in the forge's
    delivery log. Nothing is counted: no forge is known to have sent it."""
    forge = request.path_params["forge"]
    base = request.url.path[: len(request.url.path) - len(forge)] if forge else request.url.path
    receivers = " and ".join(f"{base}{name} ({forges})" for name, forges in RECEIVERS)
    raise BadRequest(f"no webhook receiver for {forge!r}; this service receives {receivers}", 404)


async def _counted(
    provider: Provider, handling: Coroutine[Any, Any, tuple[JSONResponse, str]]
) -> JSONResponse:
    """Count the delivery in WEBHOOK_DELIVERIES by its outcome (``accepted``,
    ``ignored``, ``duplicate``), or as ``rejected`` when handling it raised."""
    try:
        response, outcome = await handling
    except BaseException:
        WEBHOOK_DELIVERIES.labels(provider, "rejected").inc()
        raise
    WEBHOOK_DELIVERIES.labels(provider, outcome).inc()
    return response


async def _receive(
    request: Request, delivery: Delivery, body: bytes, parse: Parser
) -> tuple[JSONResponse, str]:
    """Answer an authenticated delivery: the recorded answer for a redelivery (before
    the body is parsed), else the pipeline's answer to the parsed push."""
    service = service_of(request)
    answer = service.recorded_push(delivery.provider, delivery.id)
    if answer is None:
        data = parse_json_object(
            body,
            request.headers.get("content-type"),
            hint=": configure the webhook with content type application/json",
        )
        push = PushRequest(delivery.provider, delivery.id, parse(delivery.event, data))
        answer = service.receive_push(push)  # committed when it returns
    response = JSONResponse(
        {**answer.answer, "duplicate": answer.duplicate}, status_code=push_status(answer)
    )
    return response, answer.outcome


def push_status(answer: PushAnswer) -> int:
    """The HTTP status of a push's answer: 202 when a ref was asked to build (the
    builds are recorded, not done), else 200 (a redelivery's too)."""
    return 202 if not answer.duplicate and answer.outcome == "accepted" else 200


routes: list[BaseRoute] = [
    Route("/hooks/github", github, methods=["POST"]),
    Route("/hooks/gitlab", gitlab, methods=["POST"]),
    # after the receivers: only what they did not take (a GET of /hooks/github
    # matches both partially and gets their 405)
    Route("/hooks/{forge:path}", unknown, methods=["POST"]),
]
