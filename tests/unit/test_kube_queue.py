"""The queue keeper: taking and renewing its Lease (``lease.claim_lease``, pure);
letting Jobs run only while what builds need answers (``ReleaseGate``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from kubernetes import client

from jobs.errors import TemporaryError
from jobs.executors.kubernetes import manifests
from jobs.executors.kubernetes.lease import claim_lease
from jobs.executors.kubernetes.queue_keeper import QueueKeeper, ReleaseGate
from jobs.executors.kubernetes.watch import WatchCache
from jobs.settings import load_settings

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def lease(holder: str | None, renewed_ago: float | None, duration: int = 15) -> client.V1LeaseSpec:
    renewed = NOW - dt.timedelta(seconds=renewed_ago) if renewed_ago is not None else None
    return client.V1LeaseSpec(
        holder_identity=holder,
        lease_duration_seconds=duration,
        acquire_time=NOW - dt.timedelta(hours=1),
        renew_time=renewed,
        lease_transitions=3,
    )


def test_a_live_lease_of_another_holder_is_left_alone() -> None:
    assert claim_lease(lease("other", renewed_ago=14), "me", NOW, 15.0) is None


def test_the_holder_renews_its_lease() -> None:
    held = lease("me", renewed_ago=10)
    renewed = claim_lease(held, "me", NOW, 15.0)
    assert renewed is not None
    assert (renewed.holder_identity, renewed.renew_time) == ("me", NOW)
    assert renewed.acquire_time == NOW - dt.timedelta(hours=1)  # held since then
    assert renewed.lease_transitions == 3
    assert held.renew_time == NOW - dt.timedelta(seconds=10)  # the input is left alone


def test_an_expired_or_released_lease_is_taken_over() -> None:
    for spec in (lease("other", renewed_ago=16), lease(None, renewed_ago=1)):
        taken = claim_lease(spec, "me", NOW, 30.0)
        assert taken is not None
        assert taken.holder_identity == "me"
        assert (taken.acquire_time, taken.renew_time) == (NOW, NOW)
        assert taken.lease_transitions == 4
        assert taken.lease_duration_seconds == 30


def test_a_lease_made_empty_is_taken() -> None:
    # the Helm chart owns the Lease object and creates it with no spec
    for spec in (None, client.V1LeaseSpec()):
        taken = claim_lease(spec, "me", NOW, 15.4)
        assert taken is not None
        assert (taken.holder_identity, taken.acquire_time, taken.renew_time) == ("me", NOW, NOW)
        assert taken.lease_duration_seconds == 15
        assert taken.lease_transitions == 1


# -- the gate: no Job runs while what builds need does not answer -------------------------


class Need:
    """A dependency check that answers while ``up``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise TemporaryError(f"the {self.name} is not answering")


class Batch:
    """Records the Jobs the keeper lets run (``patch_namespaced_job``)."""

    def __init__(self) -> None:
        self.released: list[str] = []

    def patch_namespaced_job(self, name: str, namespace: str, body: Any) -> client.V1Job:
        self.released.append(name)
        return suspended(name, suspend=body["spec"]["suspend"])


def suspended(name: str, *, suspend: bool = True) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(
            name=name,
            annotations={
                manifests.ANNOTATION + "queued-at": "1.0",
                manifests.ANNOTATION + "repo": f"git://x/{name}",
            },
        ),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(), suspend=suspend),
        status=client.V1JobStatus(),
    )


@pytest.mark.anyio
async def test_queued_jobs_wait_while_the_registry_or_buildkit_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="jobs.executors.kubernetes.queue_keeper")
    registry, buildkit = Need("registry"), Need("BuildKit daemon")
    batch = Batch()
    cache = WatchCache(None, None, "ns", "s", on_job=lambda job: None, on_queue_change=lambda: None)
    for name in ("a", "b"):
        cache.jobs[name] = suspended(name)
    keeper = QueueKeeper(
        load_settings(None, image_prefix="r.test/p-", executor="kubernetes"),
        None,
        batch,
        "ns",
        "me",
        cache,
        gate=ReleaseGate({"registry": registry, "buildkit": buildkit}, within=1),
    )
    registry.up = False
    buildkit.up = False
    for _ in range(3):
        await keeper._release_queued()
    assert batch.released == []
    assert all(job.spec.suspend for job in cache.jobs.values())
    assert caplog.messages == [
        "queue keeper: builds wait in the queue until this answers: "
        "the BuildKit daemon is not answering; the registry is not answering"
    ]
    registry.up = True
    await keeper._release_queued()
    assert batch.released == []
    buildkit.up = True
    await keeper._release_queued()
    assert sorted(batch.released) == ["a", "b"]
    assert caplog.messages[-1] == "queue keeper: what builds need answers again; letting them run"
    # nothing waits: nothing is checked
    calls = registry.calls
    await keeper._release_queued()
    assert registry.calls == calls


class RacingBatch(Batch):
    """A patch whose answer reaches the keeper after the watch has brought something
    newer of the same Job (``then``: what the watch did meanwhile, to the cache)."""

    def __init__(self, cache: WatchCache, then: str) -> None:
        super().__init__()
        self.cache, self.then = cache, then

    def patch_namespaced_job(self, name: str, namespace: str, body: Any) -> client.V1Job:
        answer = super().patch_namespaced_job(name, namespace, body)
        if self.then == "started":  # the Job controller's status, with its startTime
            newer = suspended(name, suspend=False)
            newer.status = client.V1JobStatus(start_time=NOW, active=0)
            self.cache.apply("jobs", "MODIFIED", newer)
        else:  # deleted: the build was cancelled
            self.cache.apply("jobs", "DELETED", suspended(name))
        return answer


@pytest.mark.anyio
@pytest.mark.parametrize("then", ["started", "deleted"])
async def test_the_answer_to_a_release_never_replaces_what_the_watch_brought_since(
    then: str,
) -> None:
    # The patch's answer predates the Job controller's startTime; taken after the
    # watch's event, it left a Job whose pods are refused "not started" for good, and
    # the build waited past every start timeout (seen twice in full runs under load).
    cache = WatchCache(None, None, "ns", "s", on_job=lambda job: None, on_queue_change=lambda: None)
    cache.jobs["a"] = suspended("a")
    batch = RacingBatch(cache, then)
    keeper = QueueKeeper(
        load_settings(None, image_prefix="r.test/p-", executor="kubernetes"),
        None,
        batch,
        "ns",
        "me",
        cache,
    )
    await keeper._release_queued()
    assert batch.released == ["a"]
    if then == "started":
        assert cache.jobs["a"].status.start_time == NOW
    else:
        assert "a" not in cache.jobs


@pytest.mark.anyio
async def test_the_answer_to_a_release_counts_the_job_as_running_before_the_watch_says_so() -> None:
    cache = WatchCache(None, None, "ns", "s", on_job=lambda job: None, on_queue_change=lambda: None)
    cache.jobs["a"] = suspended("a")
    keeper = QueueKeeper(
        load_settings(None, image_prefix="r.test/p-", executor="kubernetes"),
        None,
        Batch(),
        "ns",
        "me",
        cache,
    )
    await keeper._release_queued()
    assert cache.jobs["a"].spec.suspend is False


def pod_of_job(job: str, builder: client.V1ContainerState) -> client.V1Pod:
    """A Running pod of ``job`` with a rootless daemon's sidecar still running and the
    builder container in state ``builder``."""
    running = client.V1ContainerState(running=client.V1ContainerStateRunning())
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"{job}-pod", labels={"job-name": job}),
        status=client.V1PodStatus(
            phase="Running",
            init_container_statuses=[
                client.V1ContainerStatus(
                    name="buildkitd", state=running, image="i", image_id="", ready=True,
                    restart_count=0,
                )
            ],
            container_statuses=[
                client.V1ContainerStatus(
                    name="builder", state=builder, image="i", image_id="", ready=False,
                    restart_count=0,
                )
            ],
        ),
    )  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("builder_done", [False, True])
async def test_a_builds_slot_is_free_once_its_builder_container_ended(builder_done: bool) -> None:
    # a build pod with a sidecar (the rootless daemon) is Running until the kubelet has
    # stopped the sidecar after the builder exited: the repository's next build need not
    # wait for that
    cache = WatchCache(None, None, "ns", "s", on_job=lambda job: None, on_queue_change=lambda: None)
    repo = {manifests.ANNOTATION + "repo": "git://x/same"}
    for name, suspend in (("first", False), ("second", True)):
        job: Any = suspended(name, suspend=suspend)
        job.metadata.annotations.update(repo)
        cache.jobs[name] = job
    ended = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(exit_code=0))
    running = client.V1ContainerState(running=client.V1ContainerStateRunning())
    cache.pods["first"] = pod_of_job("first", ended if builder_done else running)
    settings = load_settings(
        None,
        image_prefix="r.test/p-",
        executor="kubernetes",
        limits={"max_concurrent_builds_per_repo": 1},
    )
    batch = Batch()
    keeper = QueueKeeper(settings, None, batch, "ns", "me", cache)
    await keeper._release_queued()
    assert batch.released == (["second"] if builder_done else [])
