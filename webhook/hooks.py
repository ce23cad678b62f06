"""GitHub, Gitea and GitLab push webhooks (issue 3): ``POST /hooks/github``,
``POST /hooks/gitlab``, and the reconciler that catches the pushes whose webhook was lost.
A POST to any other ``/hooks/…`` path answers 404 naming the receivers that exist
(issue 12); other methods on ``/hooks/…`` answer 405 with ``Allow: POST``.

A delivery is answered within the forge's patience (10 s) and without network I/O: it
is authenticated, parsed (``deliveries``), decided, and the decision (the builds it
created) is committed to the store before the answer. Nothing waits for a build.
Refused deliveries (4xx) store nothing; every 2xx answer is remembered under the
delivery id, so a redelivery gets the same answer and changes nothing.
See docs/webhooks.md for the answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from jobs import reconcile
from jobs.errors import RepoNotAllowed
from jobs.service import BuildService
from jobs.settings import Settings

from . import deliveries
from .api import service_of, settings_of
from .body import parse_json_object, read_body
from .deliveries import Decision, Delivery, Ignored, Provider, Push
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
    """Answer an authenticated delivery: the recorded answer for a redelivery, else
    decide, remember the decision, answer it."""
    service = service_of(request)
    if delivery.id is not None:
        recorded = service.store.delivery(delivery.provider, delivery.id)
        if recorded is not None:
            return JSONResponse({**json.loads(recorded), "duplicate": True}), "duplicate"
    data = parse_json_object(
        body,
        request.headers.get("content-type"),
        hint=": configure the webhook with content type application/json",
    )
    decision = await decide(service, delivery.provider, parse(delivery.event, data))
    answer = decision.to_json()
    if delivery.id is not None:
        service.store.remember_delivery(
            delivery.provider,
            delivery.id,
            time.time(),
            json.dumps(answer),
            keep=settings_of(request).webhooks.deliveries_remembered,
        )
    response = JSONResponse({**answer, "duplicate": False}, status_code=decision.status_code)
    return response, decision.outcome


async def decide(service: BuildService, provider: Provider, event: Push | Ignored) -> Decision:
    """Ask for a build of each pushed commit that the repo's settings select.

    No network I/O: the push names the commit, so the resolver's cache is refreshed
    from it and the build is recorded without asking the registry (the build asks
    before it runs). Each ref is asked for on its own; the image name dedupes, so a
    commit that several refs point at builds once.
    """
    if isinstance(event, Ignored):
        return Decision("ignored", event.reason)
    settings = service.settings
    repo = deliveries.match_repo(settings.repos, event.urls, allow_file=settings.allow_file_urls)
    if repo is None:
        return Decision("ignored", "repo not configured")
    try:
        service.check_allowed(repo.url)
    except RepoNotAllowed:
        return Decision("ignored", "repo not in allowed_repos", repo.url)
    builds, ignored = [], []
    for change in event.changes:
        if change.sha is None:
            ignored.append((change.ref, "deleted"))
            continue
        reason = reconcile.skip_reason(repo, event.default_branch, change.ref)
        if reason is not None:
            ignored.append((change.ref, reason))
            continue
        resolved = reconcile.resolved_ref(change.ref, change.sha)
        name = reconcile.short_name(change.ref)
        service.resolver.remember(repo.url, change.ref, resolved)
        if resolved.kind == "branch":
            # Only branches under their short name: "v1" resolves to a branch v1 before
            # a tag v1, so remembering a tag push as "v1" could shadow a branch.
            service.resolver.remember(repo.url, name, resolved)
        outcome = await service.request_commit(
            repo.url, name, resolved, trigger=provider, check_registry=False
        )
        builds.append((change.ref, outcome))
    if not builds:
        return Decision("ignored", "no ref to build", repo.url, ignored=tuple(ignored))
    return Decision("accepted", None, repo.url, tuple(builds), tuple(ignored))


async def reconcile_forever(app: Starlette) -> None:
    """Reconcile the configured repos every ``webhooks.reconcile_interval`` seconds
    for the server's life; returns at once when the interval is 0."""
    settings: Settings = app.state.settings
    service: BuildService = app.state.service
    await reconcile.reconcile_every(service, settings.webhooks.reconcile_interval)


routes: list[BaseRoute] = [
    Route("/hooks/github", github, methods=["POST"]),
    Route("/hooks/gitlab", gitlab, methods=["POST"]),
    # after the receivers: only what they did not take (a GET of /hooks/github
    # matches both partially and gets their 405)
    Route("/hooks/{forge:path}", unknown, methods=["POST"]),
]
background: list[Callable[[Starlette], Coroutine[Any, Any, None]]] = [reconcile_forever]
