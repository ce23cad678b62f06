"""The watch cache (its changes, without the watches) and the log follower (against a
stand-in stream) of ``watch``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from kubernetes import client

from jobs.executors.kubernetes.watch import LogFollower, WatchCache

# -- following a build's log --------------------------------------------------------------


class FakeLogResponse:
    """What ``read_namespaced_pod_log(..., _preload_content=False)`` returns: a stream."""

    def __init__(self, text: bytes, chunk: int) -> None:
        self._text, self._chunk = text, chunk

    def stream(self, amt: int, decode_content: bool) -> Any:
        for i in range(0, len(self._text), self._chunk):
            yield self._text[i : i + self._chunk]

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeCore:
    def __init__(self, *logs: bytes) -> None:
        self._logs = list(logs)

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> FakeLogResponse:
        return FakeLogResponse(self._logs.pop(0), chunk=7)  # lines split across chunks


LOG = b"".join(
    json.dumps({"phase": "building", "message": f"step {n}\n"}).encode() + b"\n"
    for n in range(1, 6)
)


async def follow(core: FakeCore, skip: int) -> tuple[list[str], LogFollower]:
    import asyncio

    lines: list[str] = []
    follower = LogFollower(
        core, "ns", "pod", skip, lambda line: lines.append(line.message), asyncio.get_running_loop()
    )
    await follower.done.wait()
    await asyncio.sleep(0)  # the lines handed over before "done"
    return lines, follower


@pytest.mark.anyio
async def test_a_log_read_again_skips_what_was_delivered() -> None:
    # the first stream broke off after three lines; the second is read from the start
    first, follower = await follow(FakeCore(LOG[: LOG.index(b"step 4") - 30]), skip=0)
    assert first == ["step 1", "step 2", "step 3"]
    assert follower.seen == 3
    again, _ = await follow(FakeCore(LOG), skip=follower.seen)
    assert again == ["step 4", "step 5"]


@pytest.mark.anyio
async def test_every_line_read_is_observed_the_skipped_ones_too() -> None:
    # the build's phases are known from its whole log, also after a restart
    import asyncio

    observed: list[str] = []
    delivered: list[str] = []
    follower = LogFollower(
        FakeCore(LOG),
        "ns",
        "pod",
        3,
        lambda line: delivered.append(line.message),
        asyncio.get_running_loop(),
        observe=lambda line: observed.append(line.message),
    )
    await follower.done.wait()
    await asyncio.sleep(0)
    assert observed == [f"step {n}" for n in range(1, 6)]
    assert delivered == ["step 4", "step 5"]


# -- the watch cache ------------------------------------------------------------------------


def job_named(name: str) -> client.V1Job:
    return client.V1Job(metadata=client.V1ObjectMeta(name=name))


def pod_of(job: str, uid: str, created: int, phase: str = "Running") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=f"{job}-{uid}",
            uid=uid,
            labels={"batch.kubernetes.io/job-name": job},
            creation_timestamp=dt.datetime(2026, 11, 25, 12, created, tzinfo=dt.UTC),
        ),
        status=client.V1PodStatus(phase=phase),
    )


class Recorder:
    def __init__(self) -> None:
        self.jobs: list[str] = []
        self.queue_changes = 0

    def cache(self) -> WatchCache:
        return WatchCache(
            None,
            None,
            "ns",
            "app=x",
            on_job=lambda job: self.jobs.append(job.metadata.name),
            on_queue_change=self.changed,
        )

    def changed(self) -> None:
        self.queue_changes += 1


def test_the_cache_keeps_each_jobs_newest_pod() -> None:
    cache = Recorder().cache()
    first, second = pod_of("j", "1", created=0), pod_of("j", "2", created=1)
    cache.apply("pods", "ADDED", second)
    cache.apply("pods", "ADDED", first)  # older: a late event of the first attempt
    assert cache.pods["j"] is second
    cache.apply("pods", "DELETED", first)  # not the one kept
    assert cache.pods["j"] is second
    cache.apply("pods", "DELETED", second)
    assert "j" not in cache.pods


def test_new_jobs_are_offered_and_changes_wake_their_follower() -> None:
    recorder = Recorder()
    cache = recorder.cache()
    changed = cache.follow("a")
    assert cache.followed("a")
    assert not cache.followed("b")
    cache.replace_all("jobs", [job_named("a"), job_named("b")])
    assert recorder.jobs == ["a", "b"]  # every Job listed
    assert changed.is_set()
    changed.clear()
    cache.apply("jobs", "MODIFIED", job_named("b"))
    cache.apply("jobs", "ADDED", job_named("c"))
    assert recorder.jobs == ["a", "b", "c"]  # and each one added, once
    assert not changed.is_set()
    cache.apply("pods", "ADDED", pod_of("a", "1", created=0))
    assert changed.is_set()
    cache.unfollow("a")
    assert not cache.followed("a")
    cache.replace_all("jobs", [job_named("c")])
    assert set(cache.jobs) == {"c"}


def test_a_slot_may_be_free_when_a_job_changes_or_a_pod_ends() -> None:
    recorder = Recorder()
    cache = recorder.cache()
    cache.apply("jobs", "ADDED", job_named("a"))
    cache.apply("jobs", "DELETED", job_named("a"))
    assert recorder.queue_changes == 2
    cache.apply("pods", "ADDED", pod_of("a", "1", created=0))
    assert recorder.queue_changes == 2  # a pod that runs frees nothing
    cache.apply("pods", "MODIFIED", pod_of("a", "1", created=0, phase="Succeeded"))
    assert recorder.queue_changes == 3
