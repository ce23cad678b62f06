"""RegistryAdmin against real registries (distribution 2.8): tags, digests, deleting
manifests with deletion on, refusals with it off, and Basic authentication (issue 26)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.errors import RegistryAuthError, RegistryDeletionUnsupported
from jobs.registry.admin import RegistryAdmin
from jobs.retention.policy import freed_bytes
from testkit.components import Registry, start_registry

from .tiny_images import distinct_image, push_as
from .token_registry import TokenService

pytestmark = pytest.mark.anyio


def sha(n: int) -> str:
    return f"{n:040x}"


@pytest.fixture(scope="module")
def no_delete_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = start_registry(tmp_path_factory.mktemp("no-delete-registry"), delete=False)
    yield server
    server.stop()


async def test_tags_digests_and_deletion(registry: Registry, unique: str) -> None:
    repository = f"retention-{unique}"
    one, two = distinct_image(f"one-{unique}"), distinct_image(f"two-{unique}")
    push_as(registry, one, f"{repository}:{sha(1)}")
    push_as(registry, two, f"{repository}:{sha(2)}")
    push_as(registry, two, f"{repository}:{sha(3)}")  # the same manifest as sha(2)
    # a manifest's DELETE deletes every tag naming it: the cache gets one of its own
    push_as(registry, distinct_image(f"cache-{unique}"), f"{repository}:buildcache")
    admin = RegistryAdmin(registry.url)
    try:
        assert await admin.tags(repository) == sorted([sha(1), sha(2), sha(3), "buildcache"])
        assert await admin.tags(f"never-pushed-{unique}") == []
        first, second, third = [await admin.digest(repository, sha(n)) for n in (1, 2, 3)]
        assert first is not None
        assert second is not None
        assert first.startswith("sha256:")
        assert first != second
        assert second == third
        assert await admin.digest(repository, sha(9)) is None
        assert await admin.deletion_enabled(repository)
        # a manifest's blobs: its config and its one layer, none shared with the other
        blobs_one, blobs_two = (
            await admin.blobs(repository, first),
            await admin.blobs(repository, second),
        )
        assert len(blobs_one) == len(blobs_two) == 2
        assert all(size > 0 for size in blobs_one.values())
        assert freed_bytes([blobs_one], [blobs_two]) == sum(blobs_one.values())

        assert await admin.has_image(f"{registry.host}/{repository}:{sha(1)}")
        assert await admin.delete_manifest(repository, first)
        # the cache is the caller's to forget (jobs.retention); the registry forgets now
        image = f"{registry.host}/{repository}:{sha(1)}"
        assert not await admin.has_image(image, use_cache=False)
        assert await admin.digest(repository, sha(1)) is None
        assert not await admin.delete_manifest(repository, first)  # gone already
        # the other manifest and its two tags are untouched
        assert await admin.tags(repository) == sorted([sha(2), sha(3), "buildcache"])
        assert await admin.digest(repository, sha(3)) == second
    finally:
        await admin.aclose()


async def test_a_registry_that_does_not_delete_says_so(
    no_delete_registry: Registry, unique: str
) -> None:
    repository = f"kept-{unique}"
    push_as(no_delete_registry, distinct_image(f"kept-{unique}"), f"{repository}:{sha(1)}")
    admin = RegistryAdmin(no_delete_registry.url)
    try:
        assert not await admin.deletion_enabled(repository)
        found = await admin.digest(repository, sha(1))
        assert found is not None
        with pytest.raises(RegistryDeletionUnsupported, match=r"storage\.delete\.enabled"):
            await admin.delete_manifest(repository, found)
        assert await admin.digest(repository, sha(1)) == found
    finally:
        await admin.aclose()


async def test_deletion_with_basic_credentials(auth_registry: Registry, unique: str) -> None:
    repository = f"basic-retention-{unique}"
    push_as(auth_registry, distinct_image(f"basic-{unique}"), f"{repository}:{sha(1)}")
    anonymous = RegistryAdmin(auth_registry.url)
    admin = RegistryAdmin(auth_registry.url, credentials=auth_registry.auth)
    try:
        with pytest.raises(RegistryAuthError):
            await anonymous.tags(repository)
        assert await admin.tags(repository) == [sha(1)]
        found = await admin.digest(repository, sha(1))
        assert found is not None
        assert await admin.deletion_enabled(repository)
        assert await admin.delete_manifest(repository, found)
        assert await admin.tags(repository) == []
    finally:
        await anonymous.aclose()
        await admin.aclose()


async def test_deletion_with_a_bearer_token(
    token_registry: tuple[Registry, TokenService], unique: str
) -> None:
    """A token registry (Harbor, GitLab's, distribution with token auth) wants a token
    for the repository's ``delete`` action before it deletes."""
    registry, tokens = token_registry
    repository = f"token-retention-{unique}"
    push_as(registry, distinct_image(f"token-{unique}"), f"{repository}:{sha(1)}")
    admin = RegistryAdmin(registry.url, credentials=registry.auth)
    try:
        found = await admin.digest(repository, sha(1))
        assert found is not None
        before = len(tokens.requests)
        assert await admin.delete_manifest(repository, found)
        scopes = [scope for asked in tokens.requests[before:] for scope in asked["query"]["scope"]]
        assert scopes == [f"repository:{repository}:delete"]
        assert await admin.tags(repository) == []
    finally:
        await admin.aclose()
