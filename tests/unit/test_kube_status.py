"""Reading build Jobs and their pods into states and messages (``status``, pure)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from kubernetes import client

from jobs.executors.kubernetes import manifests
from jobs.executors.kubernetes.status import (
    build_of_job,
    counted_build_of,
    failure_of,
    finished_of_another,
    has_ready_endpoint,
    job_finished,
    job_of,
    pod_ended,
    pod_of,
    pod_problem,
    queued_at,
    repo_of,
    service_at,
    start_failure,
    start_overdue,
)
from jobs.model import Build, BuildState, CountedBuild, LogLine
from jobs.repo2docker.failures import Failure
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


SETTINGS = Settings.model_validate(
    {
        "executor": "kubernetes",
        "limits": {"build_timeout": 600},
        "kubernetes": {
            "builder_image": "registry.example.org/binderhub-service-builder:1.0.0",
            "resources": {"limits": {"memory": "2Gi"}},
            "unschedulable_timeout": 300,
        },
    }
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
        "cannot pull the builder image registry.example.org/binderhub-service-builder:1.0.0: "
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


# -- the build a Job carries ----------------------------------------------------------------

BUILD = Build(
    id="5f0c6a0e3b7c4d0f8e1a2b3c4d5e6f70",
    repo="https://github.com/binder-examples/requirements",
    ref="main",
    ref_kind="branch",
    sha="0123456789abcdef0123456789abcdef01234567",
    image="registry.example.org/binder-requirements:0123456789ab",
    name="bhs-requirements-0123456789ab",
    state=BuildState.QUEUED,
    trigger="binderhub",
    created_at=1764100000.25,
    supersedable=False,
    requester="user:ann@example.org",
)


def job_of_build(build: Build, *, suspend: bool = True, condition: str | None = None) -> Any:
    """The Job the executor creates for ``build``, as the API server returns it."""
    body = manifests.make_build_job(build, SETTINGS, "builds")
    job: Any = job_with(condition)
    job.metadata = client.V1ObjectMeta(
        name=body["metadata"]["name"],
        annotations=body["metadata"]["annotations"],
        labels=body["metadata"]["labels"],
    )
    job.spec.suspend = suspend
    return job


def test_a_job_gives_back_its_build() -> None:
    assert build_of_job(job_of_build(BUILD)) == BUILD
    running = build_of_job(job_of_build(BUILD, suspend=False))
    assert running == dataclasses.replace(BUILD, state=BuildState.RUNNING)
    finished = build_of_job(job_of_build(BUILD, suspend=True, condition="Complete"))
    assert finished is not None
    assert finished.state is BuildState.RUNNING
    assert build_of_job(job_with(None)) is None  # not one of ours


def test_a_job_is_counted_for_quotas_only_when_requested() -> None:
    counted = CountedBuild(BUILD.id, "user:ann@example.org", BUILD.repo, BUILD.created_at, True)
    assert counted_build_of(job_of_build(BUILD)) == counted
    done = counted_build_of(job_of_build(BUILD, condition="Failed"))
    assert done == dataclasses.replace(counted, active=False)
    # SuccessCriteriaMet: the outcome is known, the pod may still run; it still counts
    ending = counted_build_of(job_of_build(BUILD, condition="SuccessCriteriaMet"))
    assert ending == counted
    assert counted_build_of(job_of_build(dataclasses.replace(BUILD, requester=None))) is None
    assert counted_build_of(job_with(None)) is None


def test_queue_order_and_repo_of_a_job() -> None:
    older = job_of_build(BUILD)
    younger = job_of_build(dataclasses.replace(BUILD, created_at=BUILD.created_at + 1))
    foreign = job_with(None)
    assert sorted([foreign, younger, older], key=queued_at) == [older, younger, foreign]
    assert queued_at(older) == (BUILD.created_at, BUILD.name)
    assert repo_of(older) == BUILD.repo
    assert repo_of(foreign) == ""


def test_pods_name_their_job_and_end() -> None:
    pod: Any = pod_with()
    assert job_of(pod) is None
    pod.metadata.labels = {"job-name": "old-style"}
    assert job_of(pod) == "old-style"
    pod.metadata.labels = {"batch.kubernetes.io/job-name": "j", "job-name": "j"}
    assert job_of(pod) == "j"
    assert not pod_ended(None)
    assert not pod_ended(pod)
    for phase, ended in (("Pending", False), ("Running", False), ("Succeeded", True)):
        pod.status.phase = phase
        assert pod_ended(pod) is ended
    pod.status.phase = "Failed"
    assert pod_ended(pod)


def test_only_a_finished_job_of_another_build_is_replaced() -> None:
    other = dataclasses.replace(BUILD, id="b-earlier")
    for condition in ("Failed", "Complete", "FailureTarget"):
        assert finished_of_another(job_of_build(other, condition=condition), BUILD.id)
        # this build's own Job (a restart) is followed, whatever its end
        assert not finished_of_another(job_of_build(BUILD, condition=condition), BUILD.id)
    assert not finished_of_another(job_of_build(other, suspend=False), BUILD.id)  # running
    assert not finished_of_another(job_of_build(other), BUILD.id)  # queued


def test_a_pod_belongs_to_the_job_whose_uid_owns_it() -> None:
    job: Any = job_with(None)
    job.metadata.uid = "uid-new"
    pod: Any = pod_with()
    assert pod_of(job, None) is None
    assert pod_of(job, pod) is None  # no owner
    owner = client.V1OwnerReference(
        api_version="batch/v1", kind="Job", name="j", uid="uid-old", controller=True
    )
    pod.metadata.owner_references = [owner]
    assert pod_of(job, pod) is None  # the pod of an earlier Job of the same name
    owner.uid = "uid-new"
    assert pod_of(job, pod) is pod
    owner.controller = False
    assert pod_of(job, pod) is None


# -- a build pod that cannot start (issue #14) ---------------------------------------------


def let_run(seconds_ago: float | None, suspend: bool = False) -> client.V1Job:
    start = None if seconds_ago is None else NOW - dt.timedelta(seconds=seconds_ago)
    return client.V1Job(
        metadata=client.V1ObjectMeta(name="j"),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(), suspend=suspend),
        status=client.V1JobStatus(start_time=start),
    )


def event(kind: str, reason: str, message: str, seconds_ago: float, type_: str = "Warning") -> Any:
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{kind}.{reason}"),
        involved_object=client.V1ObjectReference(kind=kind, name="x"),
        type=type_,
        reason=reason,
        message=message,
        last_timestamp=NOW - dt.timedelta(seconds=seconds_ago),
    )


def test_a_build_is_overdue_only_after_the_start_timeout_once_let_run() -> None:
    now = NOW.timestamp()
    timeout = SETTINGS.kubernetes.start_timeout
    assert timeout <= 55  # with the 5 s recheck, a build that cannot start fails within 60 s
    creating = pod_with(waiting="ContainerCreating")
    assert not start_overdue(let_run(timeout - 1), creating, SETTINGS, now)
    assert start_overdue(let_run(timeout), creating, SETTINGS, now)
    assert start_overdue(let_run(timeout), None, SETTINGS, now)  # no pod: FailedCreate?
    # queued, or never let run: the queue's time does not count
    assert not start_overdue(let_run(None, suspend=True), None, SETTINGS, now)
    assert not start_overdue(let_run(None), None, SETTINGS, now)
    # started, ended, or left to the unschedulable timeout
    running: Any = pod_with()
    running.status.container_statuses[0].state = client.V1ContainerState(
        running=client.V1ContainerStateRunning()
    )
    assert not start_overdue(let_run(600), running, SETTINGS, now)
    assert not start_overdue(let_run(600), pod_with(terminated=(1, "Error")), SETTINGS, now)
    assert not start_overdue(let_run(600), pod_with(unschedulable_for=10), SETTINGS, now)


def test_the_newest_warning_names_why_a_build_cannot_start() -> None:
    socket = (
        'MountVolume.SetUp failed for volume "docker-socket" : hostPath type check failed: '
        "/var/run/nothing.sock is not a socket file"
    )
    events = [
        event("Pod", "Scheduled", "Successfully assigned", 50, type_="Normal"),
        event("Pod", "FailedMount", "an older attempt", 40),
        event("Pod", "FailedMount", socket, 5),
    ]
    assert start_failure(events, SETTINGS) == (
        "a volume of the build pod cannot be mounted (45 seconds after it was let run): "
        f"FailedMount: {socket}"
    )
    refused = (
        'Error creating: pods "r2d-x" is forbidden: violates PodSecurity "restricted:latest": '
        "runAsNonRoot != true"
    )
    assert start_failure([event("Job", "FailedCreate", refused, 3)], SETTINGS) == (
        "the build's Job cannot create its pod (45 seconds after it was let run): "
        f"FailedCreate: {refused}"
    )
    other = start_failure([event("Pod", "Strange", "line one\n  line two", 3)], SETTINGS)
    assert other == (
        "the build pod cannot start (45 seconds after it was let run): Strange: line one line two"
    )
    # a large builder image being pulled, after a mount that failed once, is no reason
    # to give up; being scheduled is no progress of that kind
    pulling = [
        event("Pod", "FailedMount", 'configmap "x" not registered', 40),
        event("Pod", "Pulling", "Pulling image", 30, type_="Normal"),
    ]
    assert start_failure(pulling, SETTINGS) is None
    scheduled_later = [
        event("Pod", "A", "b", 9),
        event("Pod", "Scheduled", "assigned", 8, "Normal"),
    ]
    assert start_failure(scheduled_later, SETTINGS) == (
        "the build pod cannot start (45 seconds after it was let run): A: b"
    )
    assert start_failure(pulling[1:], SETTINGS) is None
    assert start_failure([], SETTINGS) is None


# -- the BuildKit daemon's Service ---------------------------------------------------------


def test_a_buildkit_address_names_a_service_of_the_namespace_or_none() -> None:
    assert service_at("tcp://bhs-buildkit.builds.svc:1234", "builds") == "bhs-buildkit"
    assert service_at("tcp://bhs-buildkit.builds.svc.cluster.local:1234", "builds") == (
        "bhs-buildkit"
    )
    assert service_at("tcp://bhs-buildkit:1234", "builds") == "bhs-buildkit"
    assert service_at("tcp://bhs-buildkit.other.svc:1234", "builds") is None
    assert service_at("tcp://10.96.0.12:1234", "builds") is None
    assert service_at("tcp://buildkit.example.org:1234", "builds") is None
    assert service_at("tcp://[fd00::1]:1234", "builds") is None


def endpoint_slice(*ready: bool | None) -> client.V1EndpointSlice:
    return client.V1EndpointSlice(
        address_type="IPv4",
        endpoints=[
            client.V1Endpoint(
                addresses=["10.0.0.1"], conditions=client.V1EndpointConditions(ready=r)
            )
            for r in ready
        ],
    )


def test_a_service_is_there_when_one_endpoint_is_ready() -> None:
    assert not has_ready_endpoint([])
    assert not has_ready_endpoint([client.V1EndpointSlice(address_type="IPv4", endpoints=None)])
    assert not has_ready_endpoint([endpoint_slice(False, False)])
    assert has_ready_endpoint([endpoint_slice(False), endpoint_slice(True)])
    assert has_ready_endpoint([endpoint_slice(None)])  # unknown: ready, as the API says
