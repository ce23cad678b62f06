"""Taking and renewing the queue keeper's Lease (``kube_queue.claim_lease``, pure)."""

from __future__ import annotations

import datetime as dt

from kubernetes import client

from jobs.executors.kube_queue import claim_lease

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
