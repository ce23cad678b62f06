"""The service log says what happened to each build (issue 20): one INFO line when it is
queued, when it starts and when it finishes (with its state and error), naming the
build, its repository, ref, commit, image, trigger and who asked. Read with caplog from
``BuildService`` over a real store and the fakes of ``tests/fakes``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from jobs.coordinator.announcer import log_state
from jobs.coordinator.push import Push, PushRequest, RefChange
from jobs.errors import BuildFailed
from jobs.model import Build, BuildState
from jobs.naming import image_name_for

from . import test_service
from .test_service import PREFIX, REPO, SHA, Rig, ended

pytestmark = pytest.mark.anyio

rig = test_service.rig
store = test_service.store

FIELDS = ("build_id", "state", "repo", "ref", "commit", "image", "trigger", "requester", "error")


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    """(message, fields) of the service's build lines, in order."""
    return [
        (record.getMessage(), {name: getattr(record, name) for name in FIELDS})
        for record in caplog.records
        if record.name == "jobs.service"
        and record.levelno == logging.INFO
        and hasattr(record, "build_id")
    ]


async def test_queued_started_finished_name_the_build_and_who_asked(
    rig: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobs.service")
    r: Rig = await rig()
    built = (await r.service.request(REPO, SHA[0], trigger="binderhub", requester="user:ann")).build
    assert built is not None
    await r.executor.running(built.id)
    r.executor.finish(built.id)
    await ended(r, built.id)
    image = image_name_for(PREFIX, REPO, SHA[0])
    head = f"{REPO} {SHA[0]} commit {SHA[0]} image {image} trigger binderhub requester user:ann"
    fields = {
        "build_id": built.id,
        "repo": REPO,
        "ref": SHA[0],
        "commit": SHA[0],
        "image": image,
        "trigger": "binderhub",
        "requester": "user:ann",
        "error": None,
    }
    assert lines(caplog) == [
        (f"build {built.id} queued: {head}", {**fields, "state": "queued"}),
        (f"build {built.id} started: {head}", {**fields, "state": "running"}),
        (f"build {built.id} finished built: {head}", {**fields, "state": "built"}),
    ]


async def test_a_failure_is_logged_with_its_error(
    rig: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobs.service")
    r: Rig = await rig()
    build = (await r.service.request(REPO, SHA[1], requester="tests")).build
    assert build is not None
    r.executor.finish(build.id, BuildFailed("a Dockerfile step failed: RUN false"))
    await ended(r, build.id)
    message, fields = lines(caplog)[-1]
    assert message.startswith(f"build {build.id} finished failed: {REPO} {SHA[1]} ")
    assert message.endswith("requester tests: a Dockerfile step failed: RUN false")
    assert (fields["state"], fields["error"]) == ("failed", "a Dockerfile step failed: RUN false")


async def test_a_push_is_asked_by_nobody_and_its_supersede_is_logged(
    rig: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobs.service")
    r: Rig = await rig(repos=[{"url": REPO}], limits={"max_concurrent_builds": 1})
    blocker = (await r.service.request(REPO, SHA[6])).build
    assert blocker is not None
    await r.executor.running(blocker.id)

    def push(delivery: str, sha: str | None) -> Any:
        event = Push((REPO,), "main", (RefChange("refs/heads/main", sha),))
        return r.service.receive_push(PushRequest("github", delivery, event)).answer

    first = push("d-1", SHA[0])["builds"][0]["id"]
    push("d-2", None)
    logged = [(f["build_id"], f["state"], f["trigger"], f["requester"]) for _, f in lines(caplog)]
    assert (first, "queued", "github", "-") in logged
    assert (first, "superseded", "github", "-") in logged
    message = next(m for m, f in lines(caplog) if f["state"] == "superseded")
    assert message.endswith(
        ": superseded by the deletion of refs/heads/main in github delivery d-2"
    )


def test_a_record_build_is_logged_with_its_version_not_as_a_commit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record's ``sha`` is its version: the line says ``figshare version 3`` (what the
    CLI shows, issue 25); the ``commit`` field keeps the version for log collectors."""
    caplog.set_level(logging.INFO, logger="jobs.service")
    page, image = "https://figshare.com/articles/_/9782777", f"{PREFIX}figshare:v3"
    record = Build(
        id="b1",
        repo=page,
        ref="latest",
        ref_kind="version",
        sha="3",
        image=image,
        name="n",
        state=BuildState.QUEUED,
        trigger="cli",
        created_at=0.0,
        provider="figshare",
    )
    log_state(record)
    [(message, fields)] = lines(caplog)
    head = f"{page} latest figshare version 3 image {image} trigger cli requester -"
    assert message == f"build b1 queued: {head}"
    assert fields["commit"] == "3"
