"""The contract of ``jobs.registry.client.Registry``, kept by ``FakeRegistry`` and by
``RegistryClient`` against a real registry: a registry that cannot answer raises,
never says "missing"; a yes is remembered and answered without asking again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from jobs.errors import RegistryError
from jobs.registry.client import Registry, RegistryClient
from testkit.components import free_port
from tests.fakes import FakeRegistry
from tests.integration.test_registry_client import push

from .conftest import IMPLEMENTATIONS

pytestmark = pytest.mark.anyio


@dataclass
class RegistryRig:
    client: Registry
    """A client of a registry that answers."""
    down: Registry
    """A client of a registry that cannot answer."""
    put: Callable[[str], str]
    """Put an image named ``name:tag`` in the registry; its full name."""
    missing: Callable[[str], str]
    """The full name an image ``name:tag`` would have."""


@pytest.fixture(params=IMPLEMENTATIONS)
async def rig(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[RegistryRig]:
    if request.param == "fake":
        fake, down = FakeRegistry(), FakeRegistry()
        down.down = True

        def put(name: str) -> str:
            fake.push(f"registry.test/{name}")
            return f"registry.test/{name}"

        yield RegistryRig(fake, down, put, lambda name: f"registry.test/{name}")
        return
    registry = request.getfixturevalue("real_registry")
    client = RegistryClient(registry.url)
    dead = RegistryClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    yield RegistryRig(
        client,
        dead,
        lambda name: push(registry, name),
        lambda name: f"{registry.host}/{name}",
    )
    await client.aclose()
    await dead.aclose()


async def test_an_image_that_is_not_there_is_missing(rig: RegistryRig, unique: str) -> None:
    image = rig.missing(f"c{unique}:nothing")
    assert await rig.client.has_image(image) is False
    assert rig.client.known(image) is False


async def test_an_image_that_is_there_is_found_and_then_known(
    rig: RegistryRig, unique: str
) -> None:
    image = rig.put(f"c{unique}:there")
    assert rig.client.known(image) is False
    assert await rig.client.has_image(image) is True
    assert rig.client.known(image) is True


async def test_a_registry_that_cannot_answer_raises_and_never_says_missing(
    rig: RegistryRig, unique: str
) -> None:
    with pytest.raises(RegistryError):
        await rig.down.has_image(rig.missing(f"c{unique}:any"))
    with pytest.raises(RegistryError):
        await rig.down.check()
    await rig.client.check()


async def test_a_remembered_image_is_answered_without_asking(rig: RegistryRig, unique: str) -> None:
    image = rig.missing(f"c{unique}:built")
    rig.down.remember(image)
    assert rig.down.known(image) is True
    assert await rig.down.has_image(image) is True  # the registry is down: no I/O
    with pytest.raises(RegistryError):
        await rig.down.has_image(image, use_cache=False)


async def test_use_cache_false_asks_the_registry(rig: RegistryRig, unique: str) -> None:
    image = rig.missing(f"c{unique}:gone")
    rig.client.remember(image)
    assert await rig.client.has_image(image, use_cache=False) is False
