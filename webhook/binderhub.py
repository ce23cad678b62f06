"""The BinderHub-compatible build stream (issue 3), ``/versions`` and ``/api/repoproviders``.

``GET /build/<provider>/<spec>?build_only=true`` with ``Accept: text/event-stream`` and a
token with ``builds:write`` answers a server-sent event stream in BinderHub's shapes, so
that ``@jupyterhub/binderhub-client`` (and jupyterhub-fancy-profiles through it) can ask
this service for an image. Guarantees:

- before the stream starts, only three answers are plain JSON errors: 401/403 (token),
  400 (no ``Accept: text/event-stream``). Everything else is an event, because an
  EventSource client cannot read an HTTP error body (the npm client even retries 5xx
  forever);
- every stream ends with exactly one ``ready`` or one ``failed`` event and then closes.
  ``ready`` names the image whichever way it was reached (a cache hit, a build, a build
  joined): ``imageName`` as BinderHub's own build-only ``ready`` does (and
  jupyterhub-fancy-profiles reads), and ``image`` too, which ``@jupyterhub/binderhub-client``
  documents for ``ready``. Errors of the request carry a ``status_code`` (the one
  ``webhook.errors.status_for`` gives, as BinderHub's ``send_error`` does); a build that
  ran and failed does not (as BinderHub's own ``failed`` build event);
- repo2docker's log lines never end the stream early: their ``failed`` phase is dropped
  from the line (the message stays), since clients stop reading at the first ``failed``;
- a comment line ``:keepalive`` is sent whenever nothing else was for 25 s
  (``webhook.sse``, BinderHub's interval: proxies close idle connections);
- a client that goes away only stops watching: the build is the service's, not the
  stream's, and a client that reconnects joins it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from jobs.coordinator.build_requests import BuildRequest
from jobs.coordinator.following import (
    WATCH_POLL_SECONDS,
    Answered,
    Followed,
    MovedOn,
    Superseded,
    follow,
)
from jobs.errors import BuildServiceError
from jobs.events import BuildEvent
from jobs.model import DELETION_PREFIX, Build, BuildState
from jobs.repo2docker.failures import retry_time
from jobs.service import BuildService
from jobs.settings import Settings
from jobs.sources.providers import stream_request

from . import __version__
from .auth import WRITE, require
from .body import sent_path
from .context import service_of, settings_of
from .errors import BadRequest, status_for
from .repo_providers import repo_providers
from .sse import KEEPALIVE_SECONDS, SSE_HEADERS, sse_event, with_keepalive

log = logging.getLogger(__name__)

LAUNCH_REFUSED = (
    "This service builds images and does not launch them: ask with build_only=true, "
    "and let JupyterHub (e.g. jupyterhub-fancy-profiles) start the server."
)

LOG_PHASES = frozenset({"fetching", "building", "pushing"})
FINAL_PHASES = ("ready", "failed")
"""repo2docker phases passed on as they are; a line of any other phase goes out
without one (``failed`` would end the stream for clients, see the module docstring)."""

_ZERO_Q = re.compile(r"^q\s*=\s*0(\.0{0,3})?$")


# -- requests (pure) --------------------------------------------------------


def accepts_event_stream(accept: str | None) -> bool:
    """Whether an ``Accept`` header lists ``text/event-stream`` (and not with ``q=0``)."""
    for item in (accept or "").split(","):
        media_type, *params = (part.strip().lower() for part in item.split(";"))
        if media_type == "text/event-stream" and not any(_ZERO_Q.match(p) for p in params):
            return True
    return False


def build_only_requested(value: str | None) -> bool:
    """``build_only=true`` (any case), as BinderHub reads it; anything else is false."""
    return (value or "").lower() == "true"


def split_build_path(raw_path: str) -> tuple[str, str]:
    """``…/build/<provider>/<spec>`` as sent (still URL-escaped) to (provider, spec).

    The spec must be cut from the raw path: decoding first would turn the ``%2F`` that
    separates a ``git`` or ``gl`` repository from its ref into a ``/``. A trailing ``/``
    is dropped, as BinderHub does.
    """
    _, _, rest = raw_path.partition("/build/")
    provider, _, spec = rest.partition("/")
    return unquote(provider), spec.rstrip("/")


# -- events (pure) ----------------------------------------------------------


def waiting_event() -> dict[str, Any]:
    return {"phase": "waiting", "message": "Waiting for build to start...\n"}


def started_event() -> dict[str, Any]:
    return {"phase": "fetching", "message": "Build started\n"}


def log_event(phase: str, message: str) -> dict[str, Any]:
    """One repo2docker line. Messages end with their newline (clients print them as
    they are); ``LogLine`` has it stripped."""
    if phase in LOG_PHASES:
        return {"phase": phase, "message": message + "\n"}
    return {"message": message + "\n"}


def ready_event(image: str, *, cached: bool) -> dict[str, Any]:
    """The last event of a stream that has its image (see the module docstring); the
    messages are BinderHub's."""
    message = "Done! Found built image\n" if cached else "Done! Image built\n"
    return {"phase": "ready", "message": message, "imageName": image, "image": image}


def failed_event(message: str, status_code: int | None = None) -> dict[str, Any]:
    """The last event of a stream that has no image. ``status_code`` only for errors of
    the request (see the module docstring)."""
    event: dict[str, Any] = {"phase": "failed"}
    if status_code is not None:
        event["status_code"] = status_code
    event["message"] = message.rstrip("\n") + "\n"
    return event


def error_event(error: Exception) -> dict[str, Any]:
    """The ``failed`` event for an error of the request, with its HTTP status."""
    return failed_event(str(error), status_for(error))


def failed_before_event(build: Build, until: float | None) -> dict[str, Any]:
    """The answer for a commit whose own failure is remembered until ``until``."""
    when = f"after {retry_time(until)}" if until is not None else "later"
    fix = "Push a fix" if build.provider == "git" else "Publish a new version"
    return failed_event(
        f"The last build of {build.content} failed, and it would fail again: "
        f"{build.error or 'no reason recorded'}. {fix}; it is tried again {when}, "
        "or now when asked with force=true."
    )


def force_requested(value: str | None) -> bool:
    """The stream's ``force`` parameter: ``true`` or ``false`` (any case), or absent.

    Raises BadRequest for anything else: a typo must not silently mean "no".
    """
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise BadRequest(f"force must be true or false, not {value[:40]!r}")


def superseded_event(ref: str, reason: str = "") -> dict[str, Any]:
    """What a stream says before it asks again for ``ref``, whose build was superseded
    (``reason`` is the build's error): by a newer commit, or by the ref's deletion."""
    if reason.startswith(DELETION_PREFIX):
        message = f"{ref} was deleted ({reason}); asking for it again"
    else:
        message = f"A newer commit of {ref} superseded this build; following it"
    return {"phase": "waiting", "message": message + "\n"}


def event_for(event: BuildEvent, image: str) -> dict[str, Any] | None:
    """A BuildEvent of the watched build as a BinderHub event; None when it has none.

    ``superseded`` has none: the stream follows the newer build instead (see
    ``build_events``).
    """
    if event.kind == "log":
        return log_event(event.phase, event.message)
    if event.kind != "state":
        return None
    if event.state == BuildState.QUEUED:
        return waiting_event()
    if event.state == BuildState.RUNNING:
        return started_event()
    if event.state == BuildState.BUILT:
        return ready_event(image, cached=False)
    if event.state in (BuildState.FAILED, BuildState.CANCELLED):
        reason = event.message if event.message and event.message != event.state else ""
        return failed_event(f"Build {event.state}: {reason}" if reason else f"Build {event.state}")
    return None


# -- streams ----------------------------------------------------------------


async def build_events(
    service: BuildService,
    provider: str,
    spec: str,
    *,
    build_only: bool,
    force: str | None = None,
    poll_interval: float = WATCH_POLL_SECONDS,
    requester: str | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Everything a stream sends, as BinderHub events, ending with ``ready`` or ``failed``:
    what ``jobs.coordinator.following.follow`` yields for the request, translated.

    ``force`` is the request's ``force`` parameter (see ``force_requested``): build even
    if the commit's last build failed. Nothing is raised: an error becomes the last event.
    A used-up quota is one ``failed`` event with status 429 and the quota's message.
    """
    if not build_only:
        yield failed_event(LAUNCH_REFUSED, 400)
        return
    try:
        repo, ref = stream_request(provider, spec)
        request = BuildRequest(
            repo,
            ref,
            trigger="binderhub",
            force=force_requested(force),
            requester=requester,
        )
        image = ""
        async for item in follow(service, request, poll_interval=poll_interval):
            if isinstance(item, Answered):
                image = item.outcome.image
            data = followed_event(item, image, service.settings.limits.failure_memory)
            if data is not None:
                yield data
    except (BuildServiceError, BadRequest) as e:
        yield error_event(e)
    except Exception:
        log.exception("the build stream for %s/%s failed", provider, spec)
        yield failed_event("internal error; the service log has the details", 500)


def followed_event(item: Followed, image: str, failure_memory: float) -> dict[str, Any] | None:
    """What the stream sends for one item of ``follow`` (``image``: the one asked for
    last); None when it sends nothing. Pure."""
    if isinstance(item, BuildEvent):
        return event_for(item, image)
    if isinstance(item, Superseded):
        return superseded_event(item.ref, item.reason)
    if isinstance(item, MovedOn):
        return failed_event(item.message)
    outcome = item.outcome
    if outcome.status == "cached":
        return ready_event(outcome.image, cached=True)
    if outcome.status == "failed-before" and outcome.build is not None:
        until = outcome.build.failure_remembered_until(failure_memory)
        return failed_before_event(outcome.build, until)
    return None


def binderhub_stream(
    events: AsyncIterator[dict[str, Any]], *, keepalive_interval: float = KEEPALIVE_SECONDS
) -> AsyncIterator[str]:
    """``events`` framed as server-sent events, with ``:keepalive`` after each quiet
    ``keepalive_interval``.

    Closing it (the client went away) cancels the wait for the next event, which ends
    ``events`` and its subscription to the build, and nothing more: the build is the
    service's.
    """
    return with_keepalive(_framed(events), keepalive_interval)


async def _framed(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for data in events:
        yield sse_event(data)


# -- handlers ---------------------------------------------------------------


async def build_stream(request: Request) -> Response:
    # browser: jupyterhub-fancy-profiles fetches this from the hub's spawn page with
    # the hub's cookies only; behind JupyterHub it follows the OAuth redirects.
    principal = await require(request, WRITE, browser=True)
    if not accepts_event_stream(request.headers.get("accept")):
        raise BadRequest(
            "this is an event stream: send Accept: text/event-stream "
            "(e.g. with @jupyterhub/binderhub-client)"
        )
    provider, spec = split_build_path(sent_path(request))
    events = build_events(
        service_of(request),
        provider,
        spec,
        build_only=build_only_requested(request.query_params.get("build_only")),
        force=request.query_params.get("force"),
        requester=principal.name,
    )
    first = await anext(events)
    if first.get("phase") in FINAL_PHASES:
        # A cache hit or an error: the first event is the last. A plain response says
        # the same to the client and costs a fraction of a streaming one.
        await events.aclose()
        return Response(sse_event(first), media_type="text/event-stream", headers=SSE_HEADERS)
    return StreamingResponse(
        binderhub_stream(_prepend(first, events)),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _prepend(
    first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    yield first
    async for event in rest:
        yield event


def versions_of(settings: Settings) -> dict[str, Any]:
    """``/versions``: BinderHub's keys, with what actually runs here. ``builder`` (older
    BinderHub) and ``builder_info`` (newer) both name the repo2docker version builds use;
    ``binderhub`` is this service's version, named as such since it is not BinderHub."""
    r2d = settings.repo2docker.version
    return {
        "builder": f"repo2docker {r2d}",
        "builder_info": {"repo2docker-version": r2d},
        "binderhub": f"binderhub-service {__version__}",
    }


async def versions(request: Request) -> JSONResponse:
    return JSONResponse(versions_of(settings_of(request)))


async def api_repo_providers(request: Request) -> JSONResponse:
    return JSONResponse(repo_providers())


routes: list[BaseRoute] = [
    Route("/build/{provider}/{spec:path}", build_stream, methods=["GET"]),
    Route("/versions", versions, methods=["GET"]),
    Route("/api/repoproviders", api_repo_providers, methods=["GET"]),
]
