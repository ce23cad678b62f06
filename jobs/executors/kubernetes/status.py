"""Reading build Jobs and their pods: what state a build is in, and why it failed.

Pure: every function takes the Kubernetes client's models (read as ``Any``: every
field of them is Optional, and these functions check what they read) and does no I/O.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from ...model import Build, BuildState, CountedBuild, LogLine
from ...repo2docker.failures import Failure, classify_failure
from ...settings import Settings
from . import manifests
from .pod import CONTAINER

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


def _condition(job: Any, *types: str) -> Any:
    for condition in (job.status.conditions or []) if job.status else []:
        if condition.type in types and condition.status == "True":
            return condition
    return None


def job_finished(job: Any) -> str | None:
    """``complete``, ``failed`` or None (still queued or running)."""
    if _condition(job, "Complete", "SuccessCriteriaMet"):
        return "complete"
    if _condition(job, "Failed", "FailureTarget"):
        return "failed"
    return None


def finished_of_another(job: Any, build_id: str) -> bool:
    """The Job has finished (``job_finished``) and was made for another build than
    ``build_id`` (its ``LABEL_BUILD_ID`` label differs): an earlier build of the same
    image, whose outcome a new request must not inherit (issue #15). A Job still
    queued or running, or this build's own (after a restart), is followed instead."""
    labels = (job.metadata.labels or {}) if job.metadata else {}
    return job_finished(job) is not None and labels.get(manifests.LABEL_BUILD_ID) != build_id


def pod_of(job: Any, pod: Any | None) -> Any | None:
    """``pod`` when ``job`` made it (its controller owner reference has the Job's uid),
    else None: a pod of an earlier Job of the same name may outlive that Job a while."""
    if pod is None or job.metadata is None:
        return None
    for owner in pod.metadata.owner_references or []:
        if owner.controller and owner.uid == job.metadata.uid:
            return pod
    return None


def job_terminal(job: Any) -> bool:
    """The Job is done (Complete or Failed). ``job_finished`` answers earlier
    (SuccessCriteriaMet, FailureTarget: the outcome is known, a pod may still be
    terminating). The queue counts a Job as running until it is terminal or its build
    is over (``build_over``: nothing of the build runs any more)."""
    return _condition(job, "Complete", "Failed") is not None


def pod_ended(pod: Any | None) -> bool:
    """The pod is over (Succeeded or Failed): its build holds no slot any more."""
    return (
        pod is not None and pod.status is not None and pod.status.phase in ("Succeeded", "Failed")
    )


def queued_at(job: Any) -> tuple[float, str]:
    """The order of the queue: when the build was queued (its annotation; a Job
    without one comes last), then the Job's name."""
    annotations = job.metadata.annotations or {}
    try:
        when = float(annotations.get(manifests.ANNOTATION + "queued-at", "inf"))
    except ValueError:
        when = float("inf")
    return when, job.metadata.name


def repo_of(job: Any) -> str:
    """The repository a build Job builds ("" for a Job without the annotation)."""
    return str((job.metadata.annotations or {}).get(manifests.ANNOTATION + "repo", ""))


def job_of(pod: Any) -> str | None:
    """The name of the Job that made ``pod``, from the labels the Job controller sets."""
    labels = pod.metadata.labels or {}
    name = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    return str(name) if name else None


def _builder_status(pod: Any) -> Any:
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.name == CONTAINER:
            return status
    return None


def builder_running(pod: Any) -> bool:
    """The builder container runs now."""
    builder = _builder_status(pod)
    return bool(builder and builder.state and builder.state.running)


def builder_succeeded(pod: Any) -> bool:
    """The builder container exited with 0: the image was built and pushed."""
    builder = _builder_status(pod)
    terminated = builder.state.terminated if builder and builder.state else None
    return terminated is not None and terminated.exit_code == 0


def build_over(pod: Any | None) -> bool:
    """Nothing of the build runs any more, so its slot in the queue is free: the pod is
    over (``pod_ended``) or its builder container has exited. A pod with a sidecar (the
    rootless daemon of ``buildkit-rootless``) stays Running until the kubelet has stopped
    the sidecar after the builder (1-3 s, measured: bench/README.md), and that daemon
    serves no other build."""
    if pod_ended(pod):
        return True
    builder = _builder_status(pod) if pod is not None else None
    return bool(builder and builder.state and builder.state.terminated)


def has_log(pod: Any) -> bool:
    """The builder container started (runs or ended), so it has a log to read."""
    builder = _builder_status(pod)
    return bool(builder and builder.state and (builder.state.running or builder.state.terminated))


def pod_problem(pod: Any, settings: Settings, now: float) -> str | None:
    """Why a build pod will never finish its build, if it is clear already.
    ``now``: epoch seconds (for the unschedulable timeout)."""
    status = pod.status
    if status is None:
        return None
    if status.reason == "Evicted":
        return f"the build pod was evicted: {status.message or 'no reason given'}"
    builder = _builder_status(pod)
    waiting = builder.state.waiting if builder and builder.state else None
    if waiting is not None and waiting.reason in PULL_FAILURES:
        return (
            f"cannot pull the builder image {settings.kubernetes.builder_image}: "
            f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
        )
    if waiting is not None and waiting.reason in CONFIG_FAILURES:
        return f"cannot start the builder: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
    for condition in status.conditions or []:
        if (
            condition.type == "PodScheduled"
            and condition.status == "False"
            and condition.reason == "Unschedulable"
        ):
            since = condition.last_transition_time
            waited = now - since.timestamp() if since else 0.0
            if waited >= settings.kubernetes.unschedulable_timeout:
                return (
                    f"the build pod could not be scheduled for {waited:.0f} seconds: "
                    f"{condition.message or 'no node fits'}"
                )
    return None


def _unschedulable(pod: Any) -> bool:
    for condition in (pod.status.conditions or []) if pod.status else []:
        if (
            condition.type == "PodScheduled"
            and condition.status == "False"
            and condition.reason == "Unschedulable"
        ):
            return True
    return False


def start_overdue(job: Any, pod: Any | None, settings: Settings, now: float) -> bool:
    """The build's Job was let run ``kubernetes.start_timeout`` seconds ago or more and
    its builder has not started: no pod (the Job controller cannot create it), or a pod
    whose builder container neither runs nor ended. ``now``: epoch seconds.

    An unschedulable pod is left to ``unschedulable_timeout`` (``pod_problem``), a
    suspended Job is queued, not starting. The Job's ``startTime`` is set when it is
    let run (reset on each resume), so the time in the queue does not count.
    """
    if job.spec.suspend or job.status is None or job.status.start_time is None:
        return False
    if pod is not None and (has_log(pod) or pod_ended(pod) or _unschedulable(pod)):
        return False
    started_at = float(job.status.start_time.timestamp())
    return now - started_at >= settings.kubernetes.start_timeout


START_FAILURES = {
    "FailedCreate": "the build's Job cannot create its pod",
    "FailedMount": "a volume of the build pod cannot be mounted",
    "FailedAttachVolume": "a volume of the build pod cannot be attached",
    "FailedCreatePodSandBox": "the node cannot create the build pod's sandbox",
}
"""Known Warning reasons that keep a build pod from starting, and what they mean.
Any other Warning is reported with its own reason."""


def _event_time(event: Any) -> float:
    when = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
    return float(when.timestamp()) if when is not None else 0.0


PROGRESS = ("Pulling", "Pulled", "Created", "Started")
"""Normal events of a pod that is getting on with starting (its image is being pulled)."""


def start_failure(events: Sequence[Any], settings: Settings) -> str | None:
    """Why an overdue build (``start_overdue``) cannot start, from the events of its Job
    and its pod: the newest Warning, with what its reason means (a missing Docker socket
    or Secret is a ``FailedMount``; a Pod Security Admission refusal the Job
    controller's ``FailedCreate``). None when there is no Warning, or when the pod made
    progress since (a large builder image being pulled after a mount that failed once):
    the build goes on waiting."""
    warnings = [event for event in events if event.type == "Warning"]
    if not warnings:
        return None
    latest = max(warnings, key=_event_time)
    progress = [_event_time(e) for e in events if e.type == "Normal" and e.reason in PROGRESS]
    if progress and max(progress) > _event_time(latest):
        return None
    reason = str(latest.reason or "Warning")
    meaning = START_FAILURES.get(reason, "the build pod cannot start")
    timeout = settings.kubernetes.start_timeout
    message = " ".join(str(latest.message or "no message").split())
    return f"{meaning} ({timeout:g} seconds after it was let run): {reason}: {message}"


def failure_of(
    job: Any,
    pod: Any | None,
    settings: Settings,
    lines: Sequence[LogLine],
    image: str,
    now: float | None = None,
) -> Failure:
    """What a failed Job's end means: a clear message from its condition, its pod's end
    and repo2docker's last ``lines``, and whether it is the commit's own failure.
    ``now``: epoch seconds, as for ``pod_problem`` (default: the time of the call).

    Only repo2docker's exit can be the commit's (``classify_failure`` decides). The
    deadline and the OOM killer are not positively the commit's (a slow registry, a
    busy node) and, like pod troubles (pulls, scheduling, eviction), not remembered.
    """
    condition = _condition(job, "Failed", "FailureTarget")
    if condition is not None and condition.reason == "DeadlineExceeded":
        return Failure(f"build timed out after {settings.limits.build_timeout:g} seconds")
    builder = _builder_status(pod) if pod is not None else None
    terminated = builder.state.terminated if builder and builder.state else None
    if terminated is None and builder is not None and builder.last_state:
        terminated = builder.last_state.terminated
    if terminated is not None:
        if terminated.reason == "OOMKilled":
            limit = (settings.kubernetes.resources.get("limits") or {}).get("memory")
            where = f" (memory limit {limit})" if limit else ""
            return Failure(f"the build ran out of memory{where} and was killed")
        code = terminated.exit_code or 1
        # a container killed by signal N ends with 128 + N
        return classify_failure(128 - code if code > 128 else code, lines, image)
    if pod is not None:
        problem = pod_problem(pod, settings, time.time() if now is None else now)
        if problem:
            return Failure(problem)
    detail = condition.message if condition is not None and condition.message else "no reason"
    return Failure(f"the build's Job failed: {detail}")


def build_of_job(job: Any) -> Build | None:
    """The build a Job of this service runs, as its annotations tell it; None for a
    Job that is not one of this service's builds."""
    facts = manifests.build_from_job(job)
    if facts is None:
        return None
    finished = job_finished(job)
    state = BuildState.QUEUED if job.spec.suspend and finished is None else BuildState.RUNNING
    try:
        created_at = float(facts["queued-at"])
    except ValueError:
        return None
    return Build(
        id=facts["build-id"],
        repo=facts["repo"],
        ref=facts["ref"],
        ref_kind=facts["ref-kind"],
        sha=facts["commit"],
        image=facts["image"],
        name=job.metadata.name,
        state=state,
        trigger=facts["trigger"],
        created_at=created_at,
        supersedable=False,
        requester=facts.get("requester"),
        provider=facts["provider"],
    )


def counted_build_of(job: Any) -> CountedBuild | None:
    """What quotas count of a Job: None unless it is a requested build of this service."""
    facts = manifests.build_from_job(job)
    if facts is None or "requester" not in facts:
        return None
    with contextlib.suppress(ValueError):
        return CountedBuild(
            facts["build-id"],
            facts["requester"],
            facts["repo"],
            float(facts["queued-at"]),
            not job_terminal(job),
        )
    return None


def api_message(e: ApiException) -> str:
    """The message of an API server's error answer (its Status body), for our errors."""
    try:
        return str(json.loads(e.body or "{}").get("message", ""))
    except ValueError:
        return str(e.body or "")[:200]


def api_unavailable(e: ApiException) -> bool:
    """Whether an API server's error answer says it may answer later: too many
    requests (429) or a server error (5xx), as opposed to a refusal. Pure."""
    return e.status is not None and (e.status == 429 or e.status >= 500)


def service_at(address: str, namespace: str) -> str | None:
    """The name of the Service in ``namespace`` that ``address`` (``tcp://host:port``)
    names by cluster DNS: ``NAME``, ``NAME.NAMESPACE.svc`` or
    ``NAME.NAMESPACE.svc.<cluster domain>``; None for any other host (an IP address,
    a name outside the cluster, another namespace's Service). Pure."""
    host = address.removeprefix("tcp://").rpartition(":")[0].lower()
    if not re.fullmatch(r"[a-z0-9.-]+", host):
        return None  # an IPv6 address, or not a name at all
    labels = host.split(".")
    if len(labels) == 1 and labels[0]:
        return labels[0]
    if len(labels) >= 3 and labels[2] == "svc" and labels[1] == namespace and labels[0]:
        return labels[0]
    return None


def has_ready_endpoint(slices: list[Any]) -> bool:
    """Whether any of a Service's EndpointSlices has an endpoint that is ready (an
    unknown readiness counts as ready, as the API asks). Pure."""
    return any(
        endpoint.conditions is None or endpoint.conditions.ready is not False
        for endpoint_slice in slices
        for endpoint in endpoint_slice.endpoints or []
    )
