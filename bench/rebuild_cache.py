"""``rebuild_cache``: how much the registry layer cache saves a content-only commit.

Each pair: a new repository whose environment step costs ``seconds`` of computing
(``timeout N sha256sum /dev/zero``: CPU-bound, the same length on any machine), built
cold (the builder's local cache emptied first, no cache in the registry yet); then a
commit that changes only a notebook, built after emptying the builder's local cache
again, so only the registry cache can help. The figure is the median rebuild time over
the median cold time; the goal is at most 20% (issue 15).

``measure_pairs`` is the executor-independent part: the local executor's variant
(``bench_local``) gives it an in-process service with the local executor on a buildkitd
of its own; the Kubernetes variant gives its own ``build`` and ``empty_cache``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jobs.factory import make_service
from jobs.model import BuildState
from jobs.service import BuildService
from jobs.settings import load_settings
from testkit.buildkit import push_base_image, start_buildkitd
from testkit.components import (
    GitRepo,
    GitServer,
    Registry,
    dockerfile,
)

from .common import say

GOAL_RATIO = 0.20

Build = Callable[[str, str], Awaitable[float]]
"""Build (repository URL, commit) to the end; returns its wall-clock seconds."""


def expensive_dockerfile(base: str, seconds: int) -> str:
    """A Dockerfile whose environment step computes for ``seconds`` seconds, then copies
    the repository (the content layer)."""
    return dockerfile(
        f"RUN (timeout {seconds} sha256sum /dev/zero || true) && echo done > /environment",
        "COPY . /srv/repo/",
        base=base,
    )


async def measure_pairs(
    *,
    pairs: int,
    new_repo: Callable[[str], GitRepo],
    build: Build,
    empty_cache: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """Run ``pairs`` (cold, rebuild) pairs; returns the seconds of each and the medians
    and ratio. ``new_repo(name)`` makes a repository with the expensive Dockerfile and a
    ``a.ipynb``; ``empty_cache`` empties the builder's local cache."""
    cold: list[float] = []
    rebuild: list[float] = []
    for i in range(pairs):
        repo = new_repo(f"rebuild-{uuid.uuid4().hex[:8]}")
        sha = repo.commit({"a.ipynb": f"{i}"}, "first")
        await empty_cache()
        cold.append(await build(repo.url, sha))
        sha = repo.commit({"a.ipynb": f"{i} edited"}, "content only")
        await empty_cache()
        rebuild.append(await build(repo.url, sha))
        say(
            f"rebuild_cache pair {i + 1}/{pairs}: "
            f"cold {cold[-1]:.1f} s, rebuild {rebuild[-1]:.1f} s"
        )
    cold_median, rebuild_median = statistics.median(cold), statistics.median(rebuild)
    return {
        "pairs": pairs,
        "cold_s": cold,
        "rebuild_s": rebuild,
        "cold_median_s": cold_median,
        "rebuild_median_s": rebuild_median,
        "ratio": rebuild_median / cold_median,
        "goal_ratio": GOAL_RATIO,
    }


async def _service_build(service: BuildService, url: str, sha: str) -> float:
    start = time.monotonic()
    outcome = await service.request(url, sha)
    if outcome.build is None:
        raise RuntimeError(f"expected a new build of {url}@{sha}, got {outcome.status}")
    build = service.get(outcome.build.id)
    async with service.events.subscribe(build.id) as events:
        while not build.state.finished:
            await events.get()
    elapsed = time.monotonic() - start
    if build.state is not BuildState.BUILT:
        raise RuntimeError(f"build of {url}@{sha} failed: {build.error}")
    return elapsed


def bench_local(
    workdir: Path, registry: Registry, git_server: GitServer, *, pairs: int, seconds: int
) -> dict[str, Any]:
    """The local executor: an in-process service (repo2docker 2026.4, the ``buildkit``
    engine) on a buildkitd of its own, pushing to ``registry``."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = push_base_image(registry, workdir / "docker-config")
    daemon = start_buildkitd(workdir / "buildkitd")
    content = expensive_dockerfile(base, seconds)
    settings = load_settings(
        None,
        image_prefix=f"{registry.host}/rebuild-",
        state_path=workdir / "state" / "builds.sqlite",
        buildkit={"host": daemon.address},
    )

    async def run() -> dict[str, Any]:
        service = make_service(settings)
        await service.start()

        async def empty_cache() -> None:
            await asyncio.to_thread(daemon.prune)

        try:
            return await measure_pairs(
                pairs=pairs,
                new_repo=lambda name: git_server.create_repo(name, {"Dockerfile": content}),
                build=lambda url, sha: _service_build(service, url, sha),
                empty_cache=empty_cache,
            )
        finally:
            await service.close()

    try:
        result = asyncio.run(run())
    finally:
        daemon.stop()
    return {"executor": "local", "environment_step_s": seconds, **result}
