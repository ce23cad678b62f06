"""Pre-pull's settings, its loop in ``serve`` (``jobs.prepull.keeper``: only the Lease's
holder writes, the offer is the catalog's, a build that finished pokes it), presence
read from the DaemonSet itself (no node read), ``GET /api/v1/prepull`` and the
``/metrics`` gauges (issue 26). The DaemonSet and the Lease are fakes here;
tests/cluster/test_prepull.py runs the real ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from jobs.events import BuildEvent
from jobs.model import Build, BuildState
from jobs.prepull.keeper import PrepullKeeper, desired_images, prepull_spec
from jobs.prepull.manifests import (
    IMAGES_ANNOTATION,
    Z2JH_USER_NODES,
    Z2JH_USER_TOLERATIONS,
    images_hash,
    init_container_name,
    make_prepull_daemonset,
)
from jobs.prepull.presence import PrepullState, Presence, daemonset_presence
from jobs.settings import ConfigError, Settings, load_settings
from webhook.app import create_app

PREFIX = "registry.example.org/binder-"


def settings(tmp_path: Path, **prepull: Any) -> Settings:
    return load_settings(
        None,
        image_prefix=PREFIX,
        state_path=tmp_path / "s.sqlite",
        prepull={"enabled": True, "pause_image": "registry.example.org/bhs:1", **prepull},
        auth={"open_read": True},
    )


def built(repo: str, ref: str, kind: str, sha: str, at: float) -> Build:
    slug = repo.rsplit("/", 1)[1]
    return Build(
        id=sha[:8],
        repo=repo,
        ref=ref,
        ref_kind=kind,
        sha=sha,
        image=f"{PREFIX}{slug}:{sha}",
        name=slug,
        state=BuildState.BUILT,
        trigger="webhook:github",
        created_at=at - 10,
        finished_at=at,
    )


A, B = "https://github.com/o/a", "https://github.com/o/b"
CATALOG: dict[str, list[Build]] = {
    # each repository's builds newest first, as BuildService.catalog() gives them
    A: [
        built(A, "refs/heads/main", "branch", "3" * 40, 300),
        built(A, "refs/heads/main", "branch", "2" * 40, 200),  # superseded: not offered
        built(A, "refs/tags/v1", "tag", "1" * 40, 100),
        built(A, "0" * 40, "commit", "0" * 40, 400),  # a bare commit: not offered
    ],
    B: [built(B, "HEAD", "head", "4" * 40, 250)],
}


class FakeLease:
    """Held or not, as the test says; counts its calls."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.released = 0

    def hold(self) -> Any:
        if not self.held:
            return None
        return SimpleNamespace(metadata=SimpleNamespace(name="bhs-prepull", uid="u-1"))

    def release(self) -> None:
        self.released += 1


class FakeDaemonSet:
    """Keeps the list written; its state is what the test sets (or an error)."""

    def __init__(self) -> None:
        self.writes: list[tuple[list[str], Mapping[str, Any] | None]] = []
        self.images: list[str] | None = None
        self.answer: PrepullState | Exception = PrepullState(0, ())
        self.reads = 0

    async def sync(self, images: Sequence[str], owner: Mapping[str, Any] | None = None) -> bool:
        if list(images) == self.images:
            return False
        self.images = list(images)
        self.writes.append((list(images), owner))
        return True

    async def state(self) -> PrepullState:
        self.reads += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def keeper(
    tmp_path: Path, held: bool = True, catalog: dict[str, list[Build]] | None = None, **prepull: Any
) -> tuple[PrepullKeeper, FakeDaemonSet, FakeLease]:
    daemonset, lease = FakeDaemonSet(), FakeLease(held)
    found = CATALOG if catalog is None else catalog
    made = PrepullKeeper(settings(tmp_path, **prepull), lambda: found, daemonset, lease)
    return made, daemonset, lease


# -- settings ---------------------------------------------------------------------------


def test_prepull_is_off_by_default_and_selects_z2jh_user_nodes(tmp_path: Path) -> None:
    prepull = load_settings(None).prepull
    assert prepull.enabled is False
    assert prepull.node_selector == {"hub.jupyter.org/node-purpose": "user"} == Z2JH_USER_NODES
    assert {t["key"] for t in prepull.tolerations} == {
        "hub.jupyter.org/dedicated",
        "hub.jupyter.org_dedicated",
    }
    assert tuple(prepull.tolerations) == Z2JH_USER_TOLERATIONS
    spec = prepull_spec(settings(tmp_path, image_pull_secrets=["image-pull-secret"]), "jhub")
    assert (spec.namespace, spec.instance) == ("jhub", "binderhub-service")
    assert spec.image_pull_secrets == ("image-pull-secret",)
    assert (spec.max_nodes_pulling, spec.max_images) == (2, 20)
    assert spec.pause_command == ("sleep", "infinity")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"enabled": True}, "prepull.pause_image is needed"),
        ({"max_nodes_pulling": 0}, "prepull.max_nodes_pulling"),
        ({"max_images": 0}, "prepull.max_images"),
        ({"interval": 0}, "prepull.interval"),
        ({"image_pull_secrets": ["Not A Name"]}, "is not a Secret name"),
        ({"node_selector": ["x"]}, "prepull.node_selector"),
        ({"nodes": {}}, "prepull.nodes: unknown setting"),
    ],
)
def test_bad_prepull_settings_are_refused_naming_the_key(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(None, prepull=values)
    assert named in str(e.value)


# -- the loop ---------------------------------------------------------------------------


def test_the_offer_is_the_newest_build_of_each_offered_ref_newest_first(tmp_path: Path) -> None:
    images = desired_images(CATALOG, settings(tmp_path))
    assert images == [f"{PREFIX}a:{'3' * 40}", f"{PREFIX}b:{'4' * 40}", f"{PREFIX}a:{'1' * 40}"]
    assert desired_images(CATALOG, settings(tmp_path, max_images=1)) == images[:1]


@pytest.mark.anyio
async def test_the_holder_of_the_lease_writes_the_offer_owned_by_the_lease(tmp_path: Path) -> None:
    made, daemonset, _ = keeper(tmp_path)
    assert await made.run_pass() is True
    ((images, owner),) = daemonset.writes
    assert images == desired_images(CATALOG, made._settings)
    assert owner == {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "name": "bhs-prepull",
        "uid": "u-1",
    }
    assert made.leader
    assert made.images == images
    assert await made.run_pass() is False  # the same offer: nothing written
    assert len(daemonset.writes) == 1


@pytest.mark.anyio
async def test_a_replica_without_the_lease_writes_nothing_but_reads_presence(
    tmp_path: Path,
) -> None:
    made, daemonset, lease = keeper(tmp_path, held=False)
    daemonset.answer = PrepullState(3, (Presence("i:1", 2, 1, 3),))
    assert await made.run_pass() is False
    assert daemonset.writes == []
    assert not made.leader
    assert daemonset.reads == 1
    assert REGISTRY.get_sample_value("binderhub_service_prepull_nodes", {"image": "i:1"}) == 2
    assert REGISTRY.get_sample_value("binderhub_service_prepull_failing_nodes", {"image": "i:1"})
    assert REGISTRY.get_sample_value("binderhub_service_prepull_selected_nodes") == 3
    await made.close()
    assert lease.released == 0  # it held nothing


@pytest.mark.anyio
async def test_images_that_leave_the_offer_leave_the_gauges(tmp_path: Path) -> None:
    made, daemonset, _ = keeper(tmp_path)
    daemonset.answer = PrepullState(1, (Presence("old:1", 1, 0, 1),))
    await made.run_pass()
    daemonset.answer = PrepullState(1, (Presence("new:2", 0, 0, 1),))
    await made.run_pass()
    assert REGISTRY.get_sample_value("binderhub_service_prepull_nodes", {"image": "old:1"}) is None
    assert REGISTRY.get_sample_value("binderhub_service_prepull_nodes", {"image": "new:2"}) == 0


@pytest.mark.anyio
async def test_a_build_that_finished_starts_a_pass_at_once(tmp_path: Path) -> None:
    catalog: dict[str, list[Build]] = {}
    made, daemonset, lease = keeper(tmp_path, catalog=catalog, interval=3600)
    task = asyncio.create_task(made.run())
    try:
        for _ in range(100):  # the first pass: an empty offer
            await asyncio.sleep(0.01)
            if daemonset.writes:
                break
        assert daemonset.writes[-1][0] == []
        catalog[B] = CATALOG[B]
        made.on_event(BuildEvent("b1", "log", "building", "a line"))
        made.on_event(BuildEvent("b1", "state", "", "", state="failed"))
        await asyncio.sleep(0.05)
        assert len(daemonset.writes) == 1  # neither a log line nor a failure pokes it
        made.on_event(BuildEvent("b1", "state", "", "", state="built"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(daemonset.writes) == 2:
                break
        assert daemonset.writes[-1][0] == [CATALOG[B][0].image]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await made.close()
    assert lease.released == 1  # the next replica writes at once


@pytest.mark.anyio
async def test_a_failing_pass_is_tried_again_and_stops_nothing(tmp_path: Path) -> None:
    made, daemonset, _ = keeper(tmp_path, interval=3600)
    daemonset.answer = RuntimeError("the API server is away")
    task = asyncio.create_task(made.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if daemonset.reads:
                break
        assert not task.done()
        daemonset.answer = PrepullState(1, ())
        made.poke()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if daemonset.reads == 2:
                break
        assert daemonset.reads == 2
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- presence from the DaemonSet itself --------------------------------------------------


def pod(node: str, images: list[str], states: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {IMAGES_ANNOTATION: images_hash(images)}},
        "spec": {"nodeName": node},
        "status": {
            "initContainerStatuses": [
                {"name": init_container_name(i, image), "state": states.get(i, {})}
                for i, image in enumerate(images)
            ]
        },
    }


def test_presence_is_read_from_the_daemonset_and_its_pods_without_nodes(tmp_path: Path) -> None:
    images = [f"{PREFIX}a:{'3' * 40}", f"{PREFIX}b:{'4' * 40}"]
    spec = prepull_spec(settings(tmp_path), "jhub")
    daemonset = make_prepull_daemonset(images, spec)
    daemonset["status"] = {"desiredNumberScheduled": 3}
    done = {"terminated": {"exitCode": 0}}
    pods = [
        pod("n1", images, {0: done, 1: done}),
        pod("n2", images, {0: done, 1: {"waiting": {"reason": "ImagePullBackOff"}}}),
        pod("n3", images[:1], {0: done}),  # a pod of the older template: not counted
    ]
    state = daemonset_presence(daemonset, pods)
    assert state.to_json() == {
        "nodes": 3,
        "images": [
            {"image": images[0], "present": 2, "failing": 0, "nodes": 3},
            {"image": images[1], "present": 1, "failing": 1, "nodes": 3},
        ],
    }
    assert daemonset_presence({"spec": {}}, []) == PrepullState(0, ())


# -- GET /api/v1/prepull ----------------------------------------------------------------


def client_of(config: Settings, made: PrepullKeeper | None) -> httpx.AsyncClient:
    app = create_app(config)
    app.state.service = SimpleNamespace(prepull=made)  # what the lifespan would set
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.anyio
async def test_the_api_says_per_image_on_how_many_nodes_it_is(tmp_path: Path) -> None:
    made, daemonset, _ = keeper(tmp_path)
    daemonset.answer = PrepullState(2, (Presence("i:1", 1, 0, 2), Presence("i:0", 2, 0, 2)))
    async with client_of(made._settings, made) as http:
        response = await http.get("/api/v1/prepull")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "enabled": True,
            "nodes": 2,
            "images": [
                {"image": "i:1", "present": 1, "failing": 0, "nodes": 2},
                {"image": "i:0", "present": 2, "failing": 0, "nodes": 2},
            ],
        }
        await http.get("/api/v1/prepull")
        assert daemonset.reads == 1  # read again only after STATE_MAX_AGE_SECONDS
        # bad input is a 400 naming it, and changes nothing
        bad = await http.get("/api/v1/prepull?image=x")
        assert bad.status_code == 400
        assert "image" in bad.json()["error"]
        assert (await http.post("/api/v1/prepull")).status_code == 405


@pytest.mark.anyio
async def test_the_api_with_prepull_off_and_with_the_cluster_away(tmp_path: Path) -> None:
    off = load_settings(None, state_path=tmp_path / "s.sqlite", auth={"open_read": True})
    async with client_of(off, None) as http:
        response = await http.get("/api/v1/prepull")
        assert response.json() == {"enabled": False, "nodes": 0, "images": []}
    made, daemonset, _ = keeper(tmp_path)
    daemonset.answer = TimeoutError("read timed out; Authorization: Bearer sekrit")
    async with client_of(made._settings, made) as http:
        response = await http.get("/api/v1/prepull")
        assert response.status_code == 503
        assert "did not answer (TimeoutError)" in response.json()["error"]
        assert "sekrit" not in response.text


@pytest.mark.anyio
async def test_the_api_needs_a_token_unless_reads_are_open(tmp_path: Path) -> None:
    closed = load_settings(None, state_path=tmp_path / "s.sqlite")
    async with client_of(closed, None) as http:
        assert (await http.get("/api/v1/prepull")).status_code == 401


@pytest.mark.anyio
async def test_an_image_that_fails_to_pull_is_left_out_so_the_others_are_pulled(
    tmp_path: Path,
) -> None:
    made, daemonset, _ = keeper(tmp_path)
    offered = desired_images(CATALOG, made._settings)
    newest = offered[0]
    daemonset.answer = PrepullState(2, tuple(Presence(i, 0, 0, 2) for i in offered))
    await made.run_pass()
    # the newest image's pull fails on one node: every image after it waits there
    daemonset.answer = PrepullState(
        2, (Presence(newest, 0, 1, 2), *(Presence(i, 0, 0, 2) for i in offered[1:]))
    )
    await made.run_pass()
    assert made.held_back.keys() == {newest}
    daemonset.answer = PrepullState(2, ())
    assert await made.run_pass() is True
    assert daemonset.writes[-1][0] == offered[1:]
    # a replica without the Lease holds nothing back: it writes nothing
    other, other_daemonset, _ = keeper(tmp_path, held=False)
    other_daemonset.answer = PrepullState(1, (Presence(newest, 0, 1, 1),))
    await other.run_pass()
    assert other.held_back == {}


@pytest.mark.anyio
async def test_a_node_selector_that_matches_no_node_is_warned_of_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    made, daemonset, _ = keeper(tmp_path)
    daemonset.answer = PrepullState(0, (Presence("i:1", 0, 0, 0),))
    with caplog.at_level(logging.WARNING, logger="jobs.prepull.keeper"):
        await made.run_pass()
        await made.run_pass()  # still none: not again
        daemonset.answer = PrepullState(1, (Presence("i:1", 1, 0, 1),))
        await made.run_pass()
        daemonset.answer = PrepullState(0, (Presence("i:1", 0, 0, 0),))
        await made.run_pass()  # none again: warned again
    warned = [r.getMessage() for r in caplog.records if "matches no node" in r.getMessage()]
    assert len(warned) == 2, warned
    assert "hub.jupyter.org/node-purpose" in warned[0]
