"""Reading build Jobs and their pods into states and messages (``kube_status``, pure)."""

from __future__ import annotations

import datetime as dt

from kubernetes import client

from jobs.executors.kube_status import failure_of, job_finished, pod_problem
from jobs.failures import Failure
from jobs.model import LogLine
from jobs.settings import Settings

# -- reading states -----------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def job_with(condition: str | None, reason: str | None = None) -> client.V1Job:
    conditions = (
        [client.V1JobCondition(type=condition, status="True", reason=reason, message="m")]
        if condition
        else None
    )
    return client.V1Job(
        metadata=client.V1ObjectMeta(name="j"),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(), suspend=False),
        status=client.V1JobStatus(conditions=conditions),
    )


def pod_with(
    waiting: str | None = None,
    terminated: tuple[int, str] | None = None,
    reason: str | None = None,
    unschedulable_for: float | None = None,
) -> client.V1Pod:
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=waiting, message="details")
        if waiting
        else None,
        terminated=client.V1ContainerStateTerminated(exit_code=terminated[0], reason=terminated[1])
        if terminated
        else None,
    )
    conditions = None
    if unschedulable_for is not None:
        conditions = [
            client.V1PodCondition(
                type="PodScheduled",
                status="False",
                reason="Unschedulable",
                message="0/1 nodes are available: 1 Insufficient memory.",
                last_transition_time=NOW - dt.timedelta(seconds=unschedulable_for),
            )
        ]
    statuses = [
        client.V1ContainerStatus(
            name="builder", image="i", image_id="", ready=False, restart_count=0, state=state
        )
    ]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        status=client.V1PodStatus(
            reason=reason,
            message="The node was low on resource: memory.",
            container_statuses=statuses,
            conditions=conditions,
        ),
    )


SETTINGS = Settings(
    executor="kubernetes",
    limits={"build_timeout": 600},
    kubernetes={"resources": {"limits": {"memory": "2Gi"}}, "unschedulable_timeout": 300},
)


def test_job_finished() -> None:
    assert job_finished(job_with(None)) is None
    assert job_finished(job_with("Complete")) == "complete"
    assert job_finished(job_with("Failed", "BackoffLimitExceeded")) == "failed"
    assert job_finished(job_with("Suspended")) is None


def test_pod_problems() -> None:
    now = NOW.timestamp()
    assert pod_problem(pod_with(waiting="ContainerCreating"), SETTINGS, now) is None
    pull = pod_problem(pod_with(waiting="ImagePullBackOff"), SETTINGS, now)
    assert pull == (
        "cannot pull the builder image quay.io/jupyterhub/repo2docker:2024.07.0: "
        "ImagePullBackOff: details"
    )
    missing_secret = pod_problem(pod_with(waiting="CreateContainerConfigError"), SETTINGS, now)
    assert missing_secret == "cannot start the builder: CreateContainerConfigError: details"
    evicted = pod_problem(pod_with(reason="Evicted"), SETTINGS, now)
    assert evicted == "the build pod was evicted: The node was low on resource: memory."
    assert pod_problem(pod_with(unschedulable_for=299), SETTINGS, now) is None
    unschedulable = pod_problem(pod_with(unschedulable_for=301), SETTINGS, now)
    assert unschedulable == (
        "the build pod could not be scheduled for 301 seconds: "
        "0/1 nodes are available: 1 Insufficient memory."
    )


def test_failure_reasons() -> None:
    failed = job_with("Failed", "BackoffLimitExceeded")
    image = "r.example/x:1"
    assert failure_of(job_with("Failed", "DeadlineExceeded"), None, SETTINGS, [], image) == (
        Failure("build timed out after 600 seconds")
    )
    assert failure_of(failed, pod_with(terminated=(137, "OOMKilled")), SETTINGS, [], image) == (
        Failure("the build ran out of memory (memory limit 2Gi) and was killed")
    )
    unknown = [LogLine("failed", "Error: no such ref")]
    assert failure_of(failed, pod_with(terminated=(1, "Error")), SETTINGS, unknown, image) == (
        Failure("repo2docker exited with code 1: Error: no such ref")
    )
    step = [LogLine("failed", "The command '/bin/sh -c false' returned a non-zero code: 1")]
    assert failure_of(failed, pod_with(terminated=(1, "Error")), SETTINGS, step, image) == (
        Failure(f"a Dockerfile step failed: {step[0].message}", remember=True)
    )
    assert failure_of(failed, pod_with(terminated=(137, "Error")), SETTINGS, step, image) == (
        Failure("repo2docker was stopped by signal 9 (SIGKILL)")
    )
    assert failure_of(failed, None, SETTINGS, [], image) == Failure("the build's Job failed: m")
