"""The pipeline against real components: git daemon, Docker daemon, repo2docker,
registries. Each test builds images from its own repositories."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

from jobs.errors import RefNotFound, RegistryAuthError
from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import Settings
from testkit.components import GitServer, Registry, dockerfile

pytestmark = pytest.mark.anyio

StartService = Callable[[Settings], Any]


async def wait_finished(service: BuildService, build_id: str, within: float = 120) -> None:
    build = service.get(build_id)
    async with service.events.subscribe(build_id) as events:
        async with asyncio.timeout(within):
            while not build.state.finished:
                await events.get()


async def wait_running(service: BuildService, build_id: str, within: float = 60) -> None:
    build = service.get(build_id)
    async with service.events.subscribe(build_id) as events:
        async with asyncio.timeout(within):
            while build.state is BuildState.QUEUED or build.pid is None:
                if build.state.finished:
                    raise AssertionError(f"build finished before it ran: {build.error}")
                await events.get()


def count_builds(service: BuildService) -> int:
    return len(service.store.recent(limit=1000))


async def test_build_push_then_cache_hit(
    git_server: GitServer,
    registry: Registry,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"ok-{unique}", {"Dockerfile": dockerfile("COPY . /srv/repo/")})
    service = await start_service(make_settings())

    outcome = await service.request(repo.url, "main")
    assert outcome.status == "created"
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.BUILT, build.error
    assert build.image == outcome.image
    assert build.image.startswith(f"{registry.host}/t{unique}-127-0-0-1-ok-{unique}-")
    # the registry itself has it, asked without our cache
    assert await service.registry.has_image(build.image, use_cache=False)
    logs = "\n".join(message for _, message in service.store.logs(build.id))
    assert "Successfully pushed" in logs

    again = await service.request(repo.url, "main")
    assert again.status == "cached"
    assert again.image == build.image
    assert again.build is None
    assert count_builds(service) == 1


async def test_concurrent_requests_share_one_build(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(
        f"twice-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 2")}
    )
    service = await start_service(make_settings())

    first, second = await asyncio.gather(
        service.request(repo.url, "main"), service.request(repo.url, "main")
    )
    assert {first.status, second.status} == {"created", "joined"}
    assert first.build is not None
    assert second.build is not None
    assert first.build.id == second.build.id
    await wait_finished(service, first.build.id)
    assert service.get(first.build.id).state is BuildState.BUILT
    assert count_builds(service) == 1


async def test_newer_commit_supersedes_queued_build(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    blocker = git_server.create_repo(
        f"block-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    repo = git_server.create_repo(f"moving-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})
    service = await start_service(
        make_settings(limits={"max_concurrent_builds": 1}, ref_cache_seconds=0)
    )

    running = await service.request(blocker.url, "main")
    assert running.build is not None
    await wait_running(service, running.build.id)
    old = await service.request(repo.url, "main")
    pinned = await service.request(repo.url, old.sha)  # asked for by SHA: kept
    assert old.build is not None
    assert old.build.state is BuildState.QUEUED
    assert pinned.build is not None
    assert pinned.build.id == old.build.id

    sha2 = repo.commit({"README": "second"})
    sha3 = repo.commit({"README": "third"})
    second = await service.request(repo.url, sha2)
    assert second.build is not None
    third = await service.request(repo.url, "main")
    assert third.sha == sha3
    assert third.build is not None
    # sha2 was asked for by SHA too: neither it nor the pinned first build is superseded
    assert service.get(old.build.id).state is BuildState.QUEUED
    assert service.get(second.build.id).state is BuildState.QUEUED

    sha4 = repo.commit({"README": "fourth"})
    fourth = await service.request(repo.url, "main")
    assert fourth.sha == sha4
    assert fourth.build is not None
    superseded = service.get(third.build.id)
    assert superseded.state is BuildState.SUPERSEDED
    assert superseded.error is not None
    assert fourth.build.id in superseded.error
    assert service.store.get(third.build.id).state is BuildState.SUPERSEDED

    await service.cancel(running.build.id)
    for build_id in (old.build.id, second.build.id, fourth.build.id):
        await wait_finished(service, build_id)
        assert service.get(build_id).state is BuildState.BUILT


async def test_cancel_running_and_queued_builds(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(
        f"slow-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    other = git_server.create_repo(
        f"slow2-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    service = await start_service(make_settings(limits={"max_concurrent_builds": 1}))

    running = await service.request(repo.url, "main")
    queued = await service.request(other.url, "main")
    assert running.build is not None
    assert queued.build is not None
    await wait_running(service, running.build.id)
    pid = service.get(running.build.id).pid
    assert pid is not None

    cancelled = await service.cancel(queued.build.id)
    assert cancelled.state is BuildState.CANCELLED
    cancelled = await service.cancel(running.build.id)
    assert cancelled.state is BuildState.CANCELLED
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert service.store.get(running.build.id).state is BuildState.CANCELLED
    # a cancelled build is not remembered as a failure: asking again builds again
    again = await service.request(repo.url, "main")
    assert again.status == "created"
    await service.cancel(again.build.id)


async def test_timeout_fails_the_build(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(
        f"hang-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    service = await start_service(make_settings(limits={"build_timeout": 3}))

    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id, within=60)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.FAILED
    assert build.error == "build timed out after 3 seconds"
    assert not build.error_remembered  # not positively the commit's (issue #12)


async def test_failing_build_is_recorded_with_its_log_and_remembered(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(
        f"broken-{unique}", {"Dockerfile": dockerfile("RUN echo 'about to fail' && exit 3")}
    )
    service = await start_service(make_settings())

    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.FAILED
    assert build.error == (
        "a Dockerfile step failed: The command '/bin/sh -c echo 'about to fail' "
        "&& exit 3' returned a non-zero code: 3"
    )
    assert build.error_remembered
    log = "\n".join(message for _, message in service.store.logs(build.id))
    assert "about to fail" in log
    assert "returned a non-zero code: 3" in log

    again = await service.request(repo.url, "main")
    assert again.status == "failed-before"
    assert again.build is not None
    assert again.build.id == build.id

    forced = await service.request(repo.url, "main", force=True)
    assert forced.status == "created"
    assert forced.build is not None
    assert forced.build.id != build.id
    await wait_finished(service, forced.build.id)
    assert service.get(forced.build.id).state is BuildState.FAILED


async def test_registry_auth_failure_is_an_error_not_a_build(
    git_server: GitServer,
    auth_registry: Registry,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"auth-{unique}", {"Dockerfile": dockerfile()})
    for registry_settings in ({}, {"username": "builder", "password": "wrong"}):
        service = await start_service(
            make_settings(
                image_prefix=f"{auth_registry.host}/t{unique}-", registry=registry_settings
            )
        )
        with pytest.raises(RegistryAuthError):
            await service.request(repo.url, "main")
        assert count_builds(service) == 0


@pytest.mark.parametrize("kind", ["basic", "token"])
async def test_authenticated_registry_build_and_push(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    """Pushes (by the Docker daemon, logged in by repo2docker) and checks (by our
    client) against a registry with htpasswd (Basic) or token (Bearer) auth."""
    if kind == "basic":
        registry: Registry = request.getfixturevalue("auth_registry")
    else:
        registry, _ = request.getfixturevalue("token_registry")
    assert registry.auth is not None
    user, password = registry.auth
    repo = git_server.create_repo(f"{kind}-{unique}", {"Dockerfile": dockerfile()})
    service = await start_service(
        make_settings(
            image_prefix=f"{registry.host}/t{unique}-",
            registry={"username": user, "password": password},
        )
    )
    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id)
    build = service.get(outcome.build.id)
    assert build.state is BuildState.BUILT, build.error
    assert (await service.request(repo.url, "main")).status == "cached"


async def test_unknown_ref_is_a_clear_error(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"refs-{unique}", {"Dockerfile": dockerfile()})
    service = await start_service(make_settings())
    with pytest.raises(RefNotFound, match="has no branch or tag named 'nope'"):
        await service.request(repo.url, "nope")
    with pytest.raises(RefNotFound, match="abbreviated"):
        await service.request(repo.url, "abcdef1")
    assert count_builds(service) == 0


async def test_tags_resolve_to_their_commit(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(f"tags-{unique}", {"Dockerfile": dockerfile()})
    sha = repo.commit({"README": "tagged"})
    repo.tag("v1", annotated=True)
    repo.commit({"README": "later"})
    service = await start_service(make_settings())
    resolved = await service.resolver.resolve(repo.url, "v1")
    assert (resolved.sha, resolved.kind, resolved.full_ref) == (sha, "tag", "refs/tags/v1")


async def test_per_repo_limit_lets_other_repos_run(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    busy = git_server.create_repo(
        f"busy-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    other = git_server.create_repo(
        f"other-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    service = await start_service(
        make_settings(limits={"max_concurrent_builds": 2, "max_concurrent_builds_per_repo": 1})
    )
    first = await service.request(busy.url, "main")
    sha2 = busy.commit({"README": "2"})
    second = await service.request(busy.url, sha2)
    third = await service.request(other.url, "main")
    assert first.build
    assert second.build
    assert third.build
    await wait_running(service, first.build.id)
    await wait_running(service, third.build.id)
    assert service.get(second.build.id).state is BuildState.QUEUED
    await service.cancel(first.build.id)
    await wait_running(service, second.build.id)
    for outcome in (second, third):
        assert outcome.build is not None
        await service.cancel(outcome.build.id)
