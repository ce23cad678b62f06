"""Pre-pull's loop in ``serve``: the DaemonSet's image list kept equal to the catalog's
offer, and what it says of each image's presence (issue 26; docs/design-prepull.md).

A pass looks at the catalog (``jobs.catalog.offered_builds``: the newest image of
each offered ref), makes the list (``manifests.prepull_images``) and writes the
DaemonSet when the list changed, then reads the presence of its images. It runs after
each build this process finishes (``on_event``: a poke) and every
``prepull.interval`` seconds: for builds other replicas finished, for images that
leave the offer, for presence. Only the holder of the Lease ``<instance>-prepull``
(``jobs.executors.kubernetes.lease.Lease``) writes; every replica reads presence, for
its ``/metrics`` and ``GET /api/v1/prepull``. A failing pass (the API server refuses or does not
answer) is logged and tried again at the next one: it never stops the service or a
build.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..catalog import offered_builds
from ..errors import TemporaryError
from ..events import BuildEvent
from ..metrics import PREPULL_FAILING, PREPULL_PRESENT, PREPULL_SELECTED
from ..model import Build, BuildState
from ..settings import Settings
from .cluster import PrepullDaemonSet
from .lease import lease_name
from .manifests import PrepullSpec, owner_reference, prepull_images
from .presence import PrepullState

log = logging.getLogger(__name__)

Catalog = Callable[[], Mapping[str, Sequence[Build]]]
"""``BuildService.catalog``: each repository's built images, newest first."""

FAILING_HOLD_INTERVALS = 10
"""How many intervals an image whose pull failed stays out of the list."""

STATE_MAX_AGE_SECONDS = 5.0
"""``current`` answers a state read less than this long ago without reading again."""


class DaemonSetWriter(Protocol):
    """What the keeper asks of the DaemonSet (``cluster.PrepullDaemonSet``)."""

    async def sync(self, images: Sequence[str], owner: Mapping[str, Any] | None = None) -> bool: ...

    async def state(self) -> PrepullState: ...


class LeaseHolder(Protocol):
    """What the keeper asks of its Lease (``jobs.executors.kubernetes.lease.Lease``);
    blocking calls."""

    def hold(self) -> Any: ...

    def release(self) -> None: ...


def prepull_spec(settings: Settings, namespace: str) -> PrepullSpec:
    """The DaemonSet's spec from ``settings.prepull``, in ``namespace``. Pure."""
    prepull = settings.prepull
    return PrepullSpec(
        namespace=namespace,
        instance=settings.kubernetes.instance,
        pause_image=prepull.pause_image,
        pause_command=tuple(prepull.pause_command),
        node_selector=dict(prepull.node_selector),
        tolerations=tuple(dict(t) for t in prepull.tolerations),
        image_pull_secrets=tuple(prepull.image_pull_secrets),
        max_nodes_pulling=prepull.max_nodes_pulling,
        max_images=prepull.max_images,
    )


def desired_images(catalog: Mapping[str, Sequence[Build]], settings: Settings) -> list[str]:
    """The images to pull: the catalog's offer (``hub_profiles.ref_kinds``), newest
    build first, at most ``prepull.max_images``. Pure."""
    offer = offered_builds(catalog, settings.hub_profiles.ref_kinds)
    return prepull_images(offer, settings.prepull.max_images)


def publish(state: PrepullState) -> None:
    """Set the pre-pull gauges to ``state``; images no longer pulled leave them."""
    PREPULL_SELECTED.set(state.nodes)
    PREPULL_PRESENT.clear()
    PREPULL_FAILING.clear()
    for p in state.images:
        PREPULL_PRESENT.labels(image=p.image).set(p.present)
        PREPULL_FAILING.labels(image=p.image).set(p.failing)


class PrepullKeeper:
    """Keeps the DaemonSet (``daemonset``) pulling ``catalog``'s offer while ``lease``
    is held (see the module docstring). ``lease_seconds``: how long a holder that
    stopped renewing keeps it; renewed at every pass, so at least a few intervals."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        daemonset: DaemonSetWriter,
        lease: LeaseHolder,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self.daemonset = daemonset
        self.lease = lease
        self._poke = asyncio.Event()
        self._read_lock = asyncio.Lock()
        self._state: PrepullState | None = None
        self._state_at = 0.0
        self.leader = False
        """This process held the Lease at its last pass."""
        self.images: list[str] | None = None
        """The list this process last wrote or found written (as the leader)."""
        self.held_back: dict[str, float] = {}
        """Images left out of the list because their pull failed, with the monotonic
        time until which they are."""
        self._warned_no_nodes = False  # warned that the node selector matches no node

    @classmethod
    def from_settings(
        cls, settings: Settings, catalog: Catalog, api: client.ApiClient | None = None
    ) -> PrepullKeeper:
        """The keeper ``settings.prepull`` describes, in its namespace (default: the
        service's), through ``api`` (default: the service's cluster configuration)."""
        from ..executors.kubernetes.cluster import api_client, default_namespace
        from ..executors.kubernetes.lease import Lease

        api = api or api_client(settings)
        namespace = settings.prepull.namespace or default_namespace(settings)
        identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        lease = Lease(
            client.CoordinationV1Api(api),
            lease_name(settings.kubernetes.instance),
            namespace,
            identity,
            seconds=3 * settings.prepull.interval,
        )
        return cls(
            settings, catalog, PrepullDaemonSet(prepull_spec(settings, namespace), api), lease
        )

    def on_event(self, event: BuildEvent) -> None:
        """An ``EventHub`` listener: a build that finished ``built`` may change the
        offer, so the next pass starts now."""
        if event.kind == "state" and event.state == BuildState.BUILT:
            self._poke.set()

    def poke(self) -> None:
        """Run a pass soon."""
        self._poke.set()

    async def run(self) -> None:
        """Passes until cancelled: one now, then after each poke or ``interval``."""
        while True:
            self._poke.clear()
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("pre-pull: pass failed, trying again later: %r", e)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.prepull.interval):
                    await self._poke.wait()

    async def run_pass(self) -> bool:
        """One pass: hold the Lease, write the list if this process holds it, read the
        presence. True when the DaemonSet was written. Raises the client's errors.

        An image whose pull fails on some node (``Presence.failing``: deleted, refused
        credentials) would hold up every image after it on that node (init containers
        run in order): the holder leaves it out for ``FAILING_HOLD_INTERVALS``
        intervals, then tries it again."""
        lease = await asyncio.to_thread(self.lease.hold)
        self.leader = lease is not None
        written = False
        if lease is not None:
            now = time.monotonic()
            self.held_back = {i: t for i, t in self.held_back.items() if t > now}
            offered = desired_images(self._catalog(), self._settings)
            images = [image for image in offered if image not in self.held_back]
            owner = owner_reference(
                "Lease", "coordination.k8s.io/v1", lease.metadata.name, lease.metadata.uid
            )
            written = await self.daemonset.sync(images, owner)
            if written:
                log.info("pre-pull: the DaemonSet now pulls %d images", len(images))
            self.images = images
        state = await self._read()
        self._warn_when_no_node_is_selected(lease is not None, state)
        failing = [p.image for p in state.images if p.failing]
        if lease is not None and failing:
            until = time.monotonic() + FAILING_HOLD_INTERVALS * self._settings.prepull.interval
            for image in failing:
                log.warning("pre-pull: %s fails to pull; left out for a while", image)
                self.held_back[image] = until
            self._poke.set()  # the list without them, at once
        return written

    def _warn_when_no_node_is_selected(self, holder: bool, state: PrepullState) -> None:
        """A warning, once each time it starts, when the holder's DaemonSet has images to
        pull and its node selector matches no node: nothing is pre-pulled (z2jh schedules
        user pods on unlabelled nodes too, so its default label may be on none)."""
        empty = holder and bool(state.images) and state.nodes == 0
        if empty and not self._warned_no_nodes:
            log.warning(
                "pre-pull: prepull.nodeSelector %s matches no node, so no image is "
                "pre-pulled; label the user nodes or change prepull.nodeSelector",
                dict(self._settings.prepull.node_selector),
            )
        self._warned_no_nodes = empty

    async def _read(self) -> PrepullState:
        async with self._read_lock:
            state = await self.daemonset.state()
            self._state, self._state_at = state, time.monotonic()
            publish(state)
            return state

    async def current(self) -> PrepullState:
        """The presence of each image the DaemonSet pulls: read again unless read
        within ``STATE_MAX_AGE_SECONDS``. Raises ``TemporaryError`` when the API
        server does not answer or fails."""
        if self._state is not None and time.monotonic() - self._state_at < STATE_MAX_AGE_SECONDS:
            return self._state
        try:
            return await self._read()
        except ApiException as e:  # its text holds the answer's headers: only the status
            raise TemporaryError(
                f"pre-pull: the Kubernetes API answered {e.status} {e.reason}"
            ) from None
        except Exception as e:
            raise TemporaryError(
                f"pre-pull: the Kubernetes API did not answer ({type(e).__name__})"
            ) from None

    async def close(self) -> None:
        """Give the Lease up (best effort: otherwise it expires)."""
        if self.leader:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.lease.release)
            self.leader = False
