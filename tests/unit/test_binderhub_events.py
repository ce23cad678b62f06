"""The BinderHub-compatible stream: event JSON pinned by golden values, spec parsing,
and the keepalive stream generator with a short interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

from jobs import errors
from jobs.events import BuildEvent
from jobs.model import Build, BuildState
from jobs.service import BuildService
from webhook.binderhub import (
    accepts_event_stream,
    binderhub_stream,
    build_events,
    build_only_requested,
    error_event,
    event_for,
    failed_before_event,
    force_requested,
    ready_event,
    split_build_path,
    superseded_event,
    versions_of,
)
from webhook.errors import BadRequest
from webhook.sse import sse_event

IMAGE = "127.0.0.1:5000/binder-example-org-repo-0123abcd:" + "a" * 40
SHA = "0123456789abcdef0123456789abcdef01234567"


def state(name: str, message: str = "") -> BuildEvent:
    return BuildEvent("b" * 32, "state", "", message, state=name)


def line(phase: str, message: str) -> BuildEvent:
    return BuildEvent("b" * 32, "log", phase, message)


# -- golden events: exactly what clients receive ------------------------------

GOLDEN_EVENTS: list[tuple[str, BuildEvent, str | None]] = [
    (
        "queued",
        state("queued"),
        'data: {"phase":"waiting","message":"Waiting for build to start...\\n"}\n\n',
    ),
    ("running", state("running"), 'data: {"phase":"fetching","message":"Build started\\n"}\n\n'),
    (
        "fetching line",
        line("fetching", "Picked Git content provider."),
        'data: {"phase":"fetching","message":"Picked Git content provider.\\n"}\n\n',
    ),
    (
        "building line",
        line("building", "Step 1/3 : FROM local/debian:bookworm"),
        'data: {"phase":"building","message":"Step 1/3 : FROM local/debian:bookworm\\n"}\n\n',
    ),
    (
        "pushing line",
        line("pushing", "Successfully pushed x"),
        'data: {"phase":"pushing","message":"Successfully pushed x\\n"}\n\n',
    ),
    (
        "repo2docker failure line keeps its message, not its phase",
        line("failed", "The command '/bin/sh -c false' returned a non-zero code: 1"),
        'data: {"message":"The command \'/bin/sh -c false\' returned a non-zero code: 1\\n"}\n\n',
    ),
    (
        "line without phase",
        line("", "Traceback (most recent call last):"),
        'data: {"message":"Traceback (most recent call last):\\n"}\n\n',
    ),
    (
        "running phase of repo2docker is not a stream phase",
        line("running", "x"),
        'data: {"message":"x\\n"}\n\n',
    ),
    (
        "built",
        state("built"),
        f'data: {{"phase":"ready","message":"Done! Image built\\n","imageName":"{IMAGE}",'
        f'"image":"{IMAGE}"}}\n\n',
    ),
    (
        "failed",
        state("failed", "repo2docker exited with 1"),
        'data: {"phase":"failed","message":"Build failed: repo2docker exited with 1\\n"}\n\n',
    ),
    (
        "cancelled",
        state("cancelled", "cancelled"),
        'data: {"phase":"failed","message":"Build cancelled\\n"}\n\n',
    ),
    (
        "cancelled by shutdown",
        state("cancelled", "interrupted"),
        'data: {"phase":"failed","message":"Build cancelled: interrupted\\n"}\n\n',
    ),
    ("superseded is followed, not sent", state("superseded", "superseded by build x"), None),
    ("unknown kind", BuildEvent("b" * 32, "phase", "building", ""), None),
]


@pytest.mark.parametrize(
    ("event", "expected"),
    [case[1:] for case in GOLDEN_EVENTS],
    ids=[case[0] for case in GOLDEN_EVENTS],
)
def test_build_events_become_binderhub_events(event: BuildEvent, expected: str | None) -> None:
    data = event_for(event, IMAGE)
    assert (None if data is None else sse_event(data)) == expected


def test_ready_for_a_cache_hit() -> None:
    assert sse_event(ready_event(IMAGE, cached=True)) == (
        f'data: {{"phase":"ready","message":"Done! Found built image\\n","imageName":"{IMAGE}",'
        f'"image":"{IMAGE}"}}'
        "\n\n"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            errors.InvalidRequest("ref must not contain '..'"),
            {"phase": "failed", "status_code": 400, "message": "ref must not contain '..'\n"},
        ),
        (
            errors.RefNotFound("git://h/r has no branch or tag named 'nope'"),
            {
                "phase": "failed",
                "status_code": 422,
                "message": "git://h/r has no branch or tag named 'nope'\n",
            },
        ),
        (
            errors.RepoNotAllowed("repository x is not in allowed_repos"),
            {
                "phase": "failed",
                "status_code": 403,
                "message": "repository x is not in allowed_repos\n",
            },
        ),
        (
            errors.RegistryError("registry answered 500"),
            {"phase": "failed", "status_code": 503, "message": "registry answered 500\n"},
        ),
        (
            BadRequest("no provider 'zenodo'", 404),
            {"phase": "failed", "status_code": 404, "message": "no provider 'zenodo'\n"},
        ),
    ],
)
def test_request_errors_carry_their_http_status(error: Exception, expected: Any) -> None:
    assert error_event(error) == expected


def test_a_commit_that_failed_before() -> None:
    build = Build(
        id="b" * 32,
        repo="git://h/r",
        ref="main",
        ref_kind="branch",
        sha=SHA,
        image=IMAGE,
        name="r2d-r",
        state=BuildState.FAILED,
        trigger="api",
        created_at=0.0,
        error="repo2docker exited with 1",
    )
    assert failed_before_event(build, 86400.0) == {
        "phase": "failed",
        "message": f"The last build of commit {SHA} failed, and it would fail again: "
        "repo2docker exited with 1. Push a fix; it is tried again after 1970-01-02 00:00 UTC, "
        "or now when asked with force=true.\n",
    }


def test_a_record_version_that_failed_before() -> None:
    build = Build(
        id="b" * 32,
        repo="https://zenodo.org/records/3242074",
        ref="latest",
        ref_kind="other",
        sha="3242081",
        image=IMAGE,
        name="r2d-r",
        state=BuildState.FAILED,
        trigger="api",
        created_at=0.0,
        error="a Dockerfile step failed",
        provider="zenodo",
    )
    assert failed_before_event(build, None)["message"] == (
        "The last build of zenodo version 3242081 failed, and it would fail again: "
        "a Dockerfile step failed. Publish a new version; it is tried again later, "
        "or now when asked with force=true.\n"
    )


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("false", False), ("TRUE", True)])
def test_force_is_true_or_false(value: str | None, expected: bool) -> None:
    assert force_requested(value) is expected


def test_force_refuses_anything_else() -> None:
    with pytest.raises(BadRequest, match="force must be true or false, not 'yes'"):
        force_requested("yes")


def test_superseded_says_what_happens_next() -> None:
    assert superseded_event("main", f"superseded by build {'b' * 32} of {SHA}") == {
        "phase": "waiting",
        "message": "A newer commit of main superseded this build; following it\n",
    }
    reason = "superseded by the deletion of refs/heads/main in github delivery d-1"
    assert superseded_event("main", reason) == {
        "phase": "waiting",
        "message": f"main was deleted ({reason}); asking for it again\n",
    }


def test_versions_name_what_runs_here() -> None:
    from jobs.settings import load_settings

    data = versions_of(load_settings(None))
    assert data["builder"] == "repo2docker 2026.4.0"
    assert data["builder_info"] == {"repo2docker-version": "2026.4.0"}
    assert data["binderhub"].startswith("binderhub-service ")


# -- requests ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/event-stream", True),
        ("Text/Event-Stream", True),
        ("application/json, text/event-stream;q=0.9", True),
        ("text/event-stream; charset=utf-8", True),
        ("text/event-stream;q=0", False),
        ("text/event-stream; q=0.000", False),
        ("*/*", False),
        ("application/json", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_must_name_event_stream(accept: str | None, expected: bool) -> None:
    assert accepts_event_stream(accept) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("1", False), ("", False), (None, False)],
)
def test_build_only(value: str | None, expected: bool) -> None:
    assert build_only_requested(value) is expected


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        ("/build/gh/owner/repo/main", ("gh", "owner/repo/main")),
        ("/build/gh/owner/repo/main/", ("gh", "owner/repo/main")),
        (
            "/build/git/git%3A%2F%2F127.0.0.1%3A9418%2Fdemo/main",
            ("git", "git%3A%2F%2F127.0.0.1%3A9418%2Fdemo/main"),
        ),
        ("/services/binder/build/gl/a%2Fb/v1", ("gl", "a%2Fb/v1")),
        ("/build/gh", ("gh", "")),
    ],
)
def test_the_spec_is_cut_from_the_raw_path(raw_path: str, expected: tuple[str, str]) -> None:
    assert split_build_path(raw_path) == expected


# -- the stream generators ----------------------------------------------------

# Paths that must not touch the service: any attribute access would fail the test
# (and turn into a 500 event that the exact comparison below rejects).
NO_SERVICE = cast(BuildService, object())


async def collect(events: AsyncGenerator[dict[str, Any], None]) -> list[dict[str, Any]]:
    return [event async for event in events]


@pytest.mark.anyio
async def test_without_build_only_the_stream_explains_and_builds_nothing() -> None:
    events = await collect(build_events(NO_SERVICE, "gh", "o/r/main", build_only=False))
    assert events == [
        {
            "phase": "failed",
            "status_code": 400,
            "message": "This service builds images and does not launch them: ask with "
            "build_only=true, and let JupyterHub (e.g. jupyterhub-fancy-profiles) start "
            "the server.\n",
        }
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("provider", "spec", "status"),
    [
        ("bitbucket", "o/r/main", 404),
        ("figshare", "10.5281%2Fzenodo.1", 400),
        ("gh", "o/r", 400),
        ("git", "x/main", 400),
        ("zenodo", "https%3A%2F%2Fgithub.com%2Fo%2Fr", 400),
        ("zenodo", "10.5281%2Fnot a doi", 400),
    ],
)
async def test_bad_specs_end_the_stream_with_one_failed_event(
    provider: str, spec: str, status: int
) -> None:
    events = await collect(build_events(NO_SERVICE, provider, spec, build_only=True))
    assert len(events) == 1
    assert events[0]["phase"] == "failed"
    assert events[0]["status_code"] == status


class Source:
    """An event source that waits where told and records whether it was closed."""

    def __init__(self, script: list[float | dict[str, Any]]) -> None:
        self.script = script
        self.closed = False

    async def events(self) -> AsyncGenerator[dict[str, Any], None]:
        try:
            for step in self.script:
                if isinstance(step, dict):
                    yield step
                else:
                    await asyncio.sleep(step)
        finally:
            self.closed = True


@pytest.mark.anyio
async def test_keepalives_fill_silences_and_events_pass_through() -> None:
    source = Source([{"phase": "waiting"}, 0.35, {"phase": "ready", "imageName": "i"}])
    chunks = [chunk async for chunk in binderhub_stream(source.events(), keepalive_interval=0.1)]
    assert chunks[0] == 'data: {"phase":"waiting"}\n\n'
    assert chunks[-1] == 'data: {"phase":"ready","imageName":"i"}\n\n'
    assert chunks[1:-1] == [":keepalive\n\n"] * len(chunks[1:-1])
    assert 2 <= len(chunks[1:-1]) <= 4
    assert source.closed


@pytest.mark.anyio
async def test_no_keepalive_when_events_keep_coming() -> None:
    source = Source([{"n": 1}, 0.01, {"n": 2}, 0.01, {"n": 3}])
    chunks = [chunk async for chunk in binderhub_stream(source.events(), keepalive_interval=1)]
    assert chunks == ['data: {"n":1}\n\n', 'data: {"n":2}\n\n', 'data: {"n":3}\n\n']


@pytest.mark.anyio
async def test_a_client_going_away_while_the_build_is_quiet_ends_the_source() -> None:
    source = Source([{"n": 1}, 3600.0, {"n": 2}])
    stream = binderhub_stream(source.events(), keepalive_interval=0.05)
    assert await anext(stream) == 'data: {"n":1}\n\n'
    assert await anext(stream) == ":keepalive\n\n"
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)  # the cancelled wait runs the source's cleanup
    assert source.closed
