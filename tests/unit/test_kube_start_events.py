"""Where a build that cannot start finds its Warning: the events of its Job and of its
pod, the pod asked for by the Job controller's label when the watch has not delivered
it (a FailedMount the kubelet reports minutes late must still be found)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from jobs.executors.kubernetes.watch import start_events


def obj(uid: str, name: str) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(uid=uid, name=name))


class FakeCore:
    """The two calls ``start_events`` makes, answered from dicts; records the selectors."""

    def __init__(self, pods: dict[str, list[Any]], events: dict[str, list[str]]) -> None:
        self.pods = pods
        self.events = events
        self.pod_selectors: list[str] = []

    def list_namespaced_pod(self, namespace: str, *, label_selector: str, **_: Any) -> Any:
        self.pod_selectors.append(label_selector)
        return SimpleNamespace(items=self.pods.get(label_selector, []))

    def list_namespaced_event(self, namespace: str, *, field_selector: str, **_: Any) -> Any:
        uid = field_selector.removeprefix("involvedObject.uid=")
        return SimpleNamespace(items=self.events.get(uid, []))


JOB = obj("job-uid", "r2d-x")
POD = obj("pod-uid", "r2d-x-abcde")
EVENTS = {"job-uid": ["SuccessfulCreate"], "pod-uid": ["FailedMount"]}


def test_the_pod_the_watch_has_not_delivered_is_asked_for_by_its_job() -> None:
    core = FakeCore({"batch.kubernetes.io/controller-uid=job-uid": [POD]}, EVENTS)
    assert start_events(core, "ns", JOB, None) == ["SuccessfulCreate", "FailedMount"]
    assert core.pod_selectors == ["batch.kubernetes.io/controller-uid=job-uid"]


def test_a_known_pod_is_not_asked_for_again() -> None:
    core = FakeCore({}, EVENTS)
    assert start_events(core, "ns", JOB, POD) == ["SuccessfulCreate", "FailedMount"]
    assert core.pod_selectors == []


def test_an_api_server_that_refuses_gives_the_events_it_could_read() -> None:
    class Refusing(FakeCore):
        def list_namespaced_pod(self, namespace: str, **_: Any) -> Any:
            raise OSError("connection refused")

    assert start_events(Refusing({}, EVENTS), "ns", JOB, None) == ["SuccessfulCreate"]
