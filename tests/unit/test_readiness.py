"""Readiness: the answer's JSON (golden), checks bounded and run together, answers
reused for a moment, the Docker daemon's address, the store's own check."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from jobs.errors import TemporaryError
from jobs.executors.local.docker_daemon import docker_host
from jobs.readiness import Check, CheckResult, Readiness, report, run_check
from jobs.store import SqliteStore

pytestmark = pytest.mark.anyio


def test_the_answer_is_ready_only_when_every_check_passed() -> None:
    assert report({"registry": CheckResult(True), "docker": CheckResult(True)}) == {
        "status": "ready",
        "checks": {"docker": {"ok": True}, "registry": {"ok": True}},
    }
    assert report(
        {"store": CheckResult(True), "docker": CheckResult(False, "the Docker daemon is away")}
    ) == {
        "status": "unavailable",
        "checks": {
            "docker": {"ok": False, "error": "the Docker daemon is away"},
            "store": {"ok": True},
        },
    }
    assert report({}) == {"status": "ready", "checks": {}}


async def test_a_check_that_raises_or_hangs_is_a_failed_check_with_a_reason() -> None:
    async def fine() -> None:
        pass

    async def down() -> None:
        raise TemporaryError("registry http://r could not be reached")

    async def silent() -> None:
        raise RuntimeError

    async def hangs() -> None:
        await asyncio.Event().wait()

    assert await run_check("registry", fine, 1) == CheckResult(True)
    assert await run_check("registry", down, 1) == CheckResult(
        False, "registry http://r could not be reached"
    )
    assert await run_check("store", silent, 1) == CheckResult(False, "RuntimeError")
    assert await run_check("docker", hangs, 0.01) == CheckResult(
        False, "docker did not answer within 0.01 s"
    )


async def test_checks_run_together_and_answers_are_reused_for_a_moment() -> None:
    now = [0.0]
    calls: list[str] = []
    both_started = asyncio.Event()

    def check(name: str) -> Check:
        async def run() -> None:
            calls.append(name)
            if len(calls) == 2:
                both_started.set()
            await both_started.wait()  # run one after the other, the first would time out

        return run

    readiness = Readiness(
        {"a": check("a"), "b": check("b")}, timeout=1, cache_seconds=1.0, clock=lambda: now[0]
    )
    first, second = await asyncio.gather(readiness.results(), readiness.results())
    assert first == second == {"a": CheckResult(True), "b": CheckResult(True)}
    assert calls == ["a", "b"]  # the second caller shared the first one's run
    now[0] = 0.9
    await readiness.results()
    assert calls == ["a", "b"]
    now[0] = 1.0
    await readiness.results()
    assert calls == ["a", "b", "a", "b"]


def test_the_docker_daemon_is_the_one_builds_use() -> None:
    assert docker_host({}) == "unix:///var/run/docker.sock"
    assert docker_host({"DOCKER_HOST": ""}) == "unix:///var/run/docker.sock"
    assert docker_host({"DOCKER_HOST": "tcp://dind:2375"}) == "tcp://dind:2375"


def test_the_store_check_names_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "builds.sqlite"
    store = SqliteStore(path)
    store.check()
    store.close()
    with pytest.raises(TemporaryError, match=re.escape(f"the state store {path} cannot be read: ")):
        store.check()
