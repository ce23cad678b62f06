"""Output of any size never fails a build; logs are bounded per build and in time
(issue #12, item 4)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.model import BuildState
from jobs.repo2docker.log_lines import MAX_LINE_BYTES
from jobs.service import BuildService
from jobs.settings import Settings
from jobs.store import SqliteStore, log_cut_marker
from testkit.components import GitServer, ServiceProcess, dockerfile, git, wait_until

from .test_pipeline import wait_finished

StartService = Callable[[Settings], Any]
StartServer = Callable[..., ServiceProcess]


@pytest.mark.anyio
async def test_a_5_mb_commit_subject_builds_with_its_line_cut(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
    tmp_path: Path,
) -> None:
    repo = git_server.create_repo(f"subject-{unique}", {"Dockerfile": dockerfile()})
    subject = "s" * (5 * 1024 * 1024)
    message = tmp_path / "message"
    message.write_text(subject)  # one line: git takes it as the subject
    git("commit", "-q", "--allow-empty", "-F", str(message), cwd=repo.path)
    service: BuildService = await start_service(make_settings())

    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id)

    build = service.get(outcome.build.id)
    assert build.state is BuildState.BUILT, build.error
    head = [m for _, m in service.store.logs(build.id) if m.startswith("HEAD is now at")]
    assert len(head) == 1
    kept, marker = head[0].split(" … ")
    assert kept.startswith(f"HEAD is now at {outcome.sha[:7]} ssss")
    assert len(kept.encode()) <= MAX_LINE_BYTES
    assert re.fullmatch(r"\[cut: \d+ of \d+ bytes not shown\]", marker)


@pytest.mark.anyio
async def test_a_build_log_is_capped_and_the_build_goes_on(
    git_server: GitServer,
    make_settings: Callable[..., Settings],
    start_service: StartService,
    unique: str,
) -> None:
    repo = git_server.create_repo(
        f"chatty-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && seq 1 5000")}
    )
    cap = 4096
    service: BuildService = await start_service(make_settings(build_logs={"max_bytes": cap}))

    outcome = await service.request(repo.url, "main")
    assert outcome.build is not None
    await wait_finished(service, outcome.build.id)

    build = service.get(outcome.build.id)
    assert build.state is BuildState.BUILT, build.error
    messages = [message for _, message in service.store.logs(build.id)]
    assert messages[-1] == log_cut_marker(cap)
    assert sum(len(message.encode()) for message in messages[:-1]) <= cap
    assert "5000" not in messages


def test_the_server_deletes_logs_past_the_retention(
    start_server: StartServer, tmp_path: Path
) -> None:
    from tests.unit.test_store import make_build

    store = SqliteStore(tmp_path / "state" / "builds.sqlite")
    now = time.time()
    for build_id, finished in (("old", now - 8 * 86400), ("recent", now - 6 * 86400)):
        store.create(make_build(build_id, BuildState.BUILT, finished))
        for i in range(10):
            store.append_log(build_id, "building", f"line {i}")
    store.close()

    server = start_server(build_logs={"retention_days": 7})

    store = SqliteStore(tmp_path / "state" / "builds.sqlite")
    try:
        wait_until(lambda: store.logs("old") == [])
        assert len(store.logs("recent")) == 10
    finally:
        store.close()
    server.stop()
