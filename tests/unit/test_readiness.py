"""Readiness: the answer's JSON (golden: ready, degraded, unavailable), checks bounded and
run in the background so that the answer waits for nothing, one log line and a gauge per
change, the Docker daemon's address, the store's own check."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from jobs.checks import CheckResult, in_thread, run_check
from jobs.errors import TemporaryError
from jobs.executors.daemons import docker_host
from jobs.readiness import DependencyMonitor, Status, report
from jobs.store import SqliteStore

pytestmark = pytest.mark.anyio

T = 1_700_000_000.0


def test_the_answer_is_degraded_for_a_shared_dependency_and_unavailable_for_the_store() -> None:
    up = Status(True, None, since=T - 60, checked_at=T - 1)
    down = Status(False, "registry http://r could not be reached", since=T - 20, checked_at=T - 2)
    assert report({"registry": up, "store": up, "docker": up}, now=T) == {
        "status": "ready",
        "checks": {
            name: {"ok": True, "since": T - 60, "checked_at": T - 1}
            for name in ("docker", "registry", "store")
        },
    }
    assert report({"registry": down, "store": up}, now=T) == {
        "status": "degraded",
        "checks": {
            "registry": {
                "ok": False,
                "error": "registry http://r could not be reached",
                "since": T - 20,
                "checked_at": T - 2,
            },
            "store": {"ok": True, "since": T - 60, "checked_at": T - 1},
        },
    }
    store_down = Status(False, "the state store /s cannot be read", since=T - 5, checked_at=T)
    assert report({"registry": down, "store": store_down}, now=T)["status"] == "unavailable"
    assert report({}, now=T) == {"status": "ready", "checks": {}}


def test_a_result_too_old_to_trust_counts_as_failing() -> None:
    old = Status(True, None, since=T - 100, checked_at=T - 31)
    answer = report({"store": old}, now=T, stale_after=30)
    assert answer == {
        "status": "unavailable",
        "checks": {
            "store": {
                "ok": False,
                "error": "not checked for 31 s",
                "since": T - 100,
                "checked_at": T - 31,
            }
        },
    }


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


async def test_the_answer_reads_the_last_results_and_never_runs_a_check() -> None:
    calls = {"store": 0, "jupyterhub": 0}

    async def store() -> None:
        calls["store"] += 1

    async def slow_hub() -> None:
        calls["jupyterhub"] += 1
        await asyncio.Event().wait()  # a hub that never answers

    now = [T]
    monitor = DependencyMonitor(
        {"store": store, "jupyterhub": slow_hub},
        timeout=0.01,
        interval=3600,
        clock=lambda: now[0],
    )
    await monitor.start()  # one round, bounded by the timeout
    try:
        for _ in range(50):  # probes, as often as they come
            answer = monitor.answer()
        assert calls == {"store": 1, "jupyterhub": 1}
        assert answer == {
            "status": "degraded",
            "checks": {
                "jupyterhub": {
                    "ok": False,
                    "error": "jupyterhub did not answer within 0.01 s",
                    "since": T,
                    "checked_at": T,
                },
                "store": {"ok": True, "since": T, "checked_at": T},
            },
        }
    finally:
        await monitor.stop()


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("binderhub_service_dependency_up", {"dependency": name})


async def test_each_change_is_logged_once_and_sets_its_gauge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([None, "refused", "refused", "timed out", None, None, "refused"])

    async def registry() -> None:
        problem = next(answers)
        if problem is not None:
            raise TemporaryError(f"registry http://r {problem}")

    now = [T]
    monitor = DependencyMonitor({"registry": registry}, interval=3600, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="jobs.readiness")
    seen = []
    for _ in range(7):
        now[0] += 10
        status = await monitor.check("registry")
        seen.append((status.ok, status.since, gauge("registry")))
    assert seen == [
        (True, T + 10, 1.0),
        (False, T + 20, 0.0),
        (False, T + 20, 0.0),
        (False, T + 20, 0.0),
        (True, T + 50, 1.0),
        (True, T + 50, 1.0),
        (False, T + 70, 0.0),
    ]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "registry does not answer (degraded): registry http://r refused"),
        ("INFO", "registry answers again, after 30 s"),
        ("WARNING", "registry does not answer (degraded): registry http://r refused"),
    ]


async def test_a_store_that_fails_makes_the_pod_unavailable_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def store() -> None:
        raise TemporaryError("the state store /s cannot be read: disk I/O error")

    monitor = DependencyMonitor({"store": store}, interval=3600)
    await monitor.check("store")
    assert monitor.answer()["status"] == "unavailable"
    assert caplog.messages == [
        "store does not answer (this pod is not ready): "
        "the state store /s cannot be read: disk I/O error"
    ]


async def test_a_blocking_check_in_a_thread_is_not_started_twice_while_it_hangs() -> None:
    release = threading.Event()
    calls = []

    def hangs() -> None:
        calls.append(1)
        release.wait(30)

    check = in_thread(hangs)
    for _ in range(3):
        assert await run_check("store", check, 0.01) == CheckResult(
            False, "store did not answer within 0.01 s"
        )
    assert calls == [1]
    release.set()
    assert await run_check("store", check, 5) == CheckResult(True)
    assert await run_check("store", check, 5) == CheckResult(True)
    assert calls == [1, 1]


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


def test_a_shared_database_is_a_shared_dependency_not_the_pods_own() -> None:
    """With PostgreSQL every replica's store is the same database: down, it makes the
    answer degraded, not unavailable (a SQLite file stays the pod's own)."""
    from types import SimpleNamespace
    from typing import cast

    from jobs.readiness import pod_checks
    from jobs.service import BuildService

    down = {"store": Status(ok=False, error="no", since=0.0, checked_at=100.0)}
    for shared, expected in ((True, "degraded"), (False, "unavailable")):
        service = cast(BuildService, SimpleNamespace(store=SimpleNamespace(shared=shared)))
        assert report(down, now=100.0, pod_checks=pod_checks(service))["status"] == expected
