"""Registry retention (issue 26): what one run frees on a registry holding N superseded
commits of one branch, estimated by the run and measured on the registry's disk after
its garbage collection, and how long the run takes.

``python -m bench.retention [--commits 50] [--commit-mib 1] [--environment-mib 20]``

Everything is made here: a distribution registry (deletion on) in a temporary
directory, N+1 images of one repository built with the Docker daemon on one
"environment" image (``local/debian:bookworm`` and ``--environment-mib`` of random bytes:
the layers every commit shares, as repo2docker's environment layers are), each with a
layer of its own (``--commit-mib`` of random bytes, the repository's content), each
pushed and recorded in a SQLite store as a build of ``main``, all older than
``retention.keep_days``. Then one ``RetentionRun`` (``keep_per_ref: 1``, nothing in use)
deletes the N superseded manifests; the registry is stopped and
``registry garbage-collect --delete-untagged`` frees their blobs. The figures: the run's
wall time, its ``freed_bytes`` estimate, the data directory's size before and after.
Images this run built are removed from the Docker daemon. JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from jobs.catalog import offered_images
from jobs.model import Build, BuildState
from jobs.registry.admin import RegistryAdmin
from jobs.retention.policy import RetentionRules
from jobs.retention.run import Protection, RetentionRun
from jobs.store import SqliteStore
from testkit.components import DOCKER, Registry, start_registry

from .common import RESULTS_DIR, say

DAY = 86400.0
REPOSITORY = "bench-retention-1a2b3c4d"
ENVIRONMENT_IMAGE = "local/bench-retention-environment:latest"
"""The layers every commit shares (as repo2docker's environment layers are), built once."""


def disk_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (their sizes, as the registry wrote them)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_and_push(registry: Registry, context: Path, n: int, commit_mib: float) -> str:
    """Commit ``n``: its own layer of random bytes on the shared ones; pushed; the image."""
    (context / "commit.bin").write_bytes(os.urandom(int(commit_mib * 1024 * 1024)))
    image = f"{registry.host}/{REPOSITORY}:{n:040x}"
    subprocess.run(
        [DOCKER, "build", "-q", "-t", image, str(context)], check=True, capture_output=True
    )
    subprocess.run([DOCKER, "push", image], check=True, capture_output=True)
    subprocess.run([DOCKER, "rmi", image], check=True, capture_output=True)
    return image


def record(store: SqliteStore, image: str, n: int, age_days: float) -> None:
    when = time.time() - age_days * DAY
    store.create(
        Build(
            id=f"{n:032x}",
            repo="https://example.org/bench/retention",
            ref="refs/heads/main",
            ref_kind="branch",
            sha=f"{n:040x}",
            image=image,
            name=f"r2d-bench-{n}",
            state=BuildState.BUILT,
            trigger="webhook:github",
            created_at=when,
            finished_at=when,
        )
    )


async def run_retention(registry: Registry, store: SqliteStore) -> tuple[Any, float]:
    async def guard() -> Protection:
        catalog: dict[str, list[Build]] = {}
        for build in store.built_images(limit=1_000_000):
            catalog.setdefault(build.repo, []).append(build)
        return Protection(offered=offered_images(catalog, ("branch", "tag", "head")))

    admin = RegistryAdmin(registry.url)
    run = RetentionRun(
        admin=admin,
        host=registry.host,
        cache=admin,
        store=store,
        guard=guard,
        rules=RetentionRules(keep_per_ref=1, keep_seconds=30 * DAY),
    )
    try:
        started = time.perf_counter()
        report = await run.run(dry_run=False)
        return report, time.perf_counter() - started
    finally:
        await admin.aclose()


def garbage_collect(directory: Path) -> float:
    """The registry's own garbage collection on its (stopped) storage; its seconds."""
    started = time.perf_counter()
    subprocess.run(
        ["docker-registry", "garbage-collect", "--delete-untagged", str(directory / "config.yml")],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def measure(commits: int, commit_mib: float, environment_mib: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        base = Path(tmp)
        registry = start_registry(base / "registry")
        environment = base / "environment"
        environment.mkdir()
        (environment / "environment.bin").write_bytes(
            os.urandom(int(environment_mib * 1024 * 1024))
        )
        (environment / "Dockerfile").write_text(
            "FROM local/debian:bookworm\nCOPY environment.bin /opt/\n"
        )
        subprocess.run(
            [DOCKER, "build", "-q", "-t", ENVIRONMENT_IMAGE, str(environment)],
            check=True,
            capture_output=True,
        )
        context = base / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(
            f"FROM {ENVIRONMENT_IMAGE}\nCOPY commit.bin /srv/repo/\n"
        )
        store = SqliteStore(str(base / "state.sqlite"))
        try:
            say(f"building and pushing {commits + 1} commits")
            for n in range(commits + 1):
                image = build_and_push(registry, context, n, commit_mib)
                record(store, image, n, age_days=200 - n)
            before = disk_bytes(base / "registry" / "data")
            say("one retention run")
            report, seconds = asyncio.run(run_retention(registry, store))
        finally:
            store.close()
            registry.stop()
            subprocess.run([DOCKER, "rmi", ENVIRONMENT_IMAGE], capture_output=True)
        after_delete = disk_bytes(base / "registry" / "data")
        gc_seconds = garbage_collect(base / "registry")
        after_gc = disk_bytes(base / "registry" / "data")
    return {
        "commits_superseded": commits,
        "commit_layer_mib": commit_mib,
        "environment_layer_mib": environment_mib,
        "deleted_images": sum(len(d.images) for d in report.deleted),
        "stopped": report.stopped,
        "run_seconds": round(seconds, 3),
        "estimated_freed_bytes": report.freed_bytes,
        "disk_bytes_before": before,
        "disk_bytes_after_deletion": after_delete,
        "disk_bytes_after_gc": after_gc,
        "freed_bytes_on_disk": before - after_gc,
        "gc_seconds": round(gc_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--commit-mib", type=float, default=1.0)
    parser.add_argument("--environment-mib", type=float, default=20.0)
    args = parser.parse_args()
    result = measure(args.commits, args.commit_mib, args.environment_mib)
    result["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"retention-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
