"""The rule of ``jobs.repo2docker.failures.CAUSES`` as a whole: its order, and
docs/overview.md's copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.model import LogLine
from jobs.repo2docker.failures import CAUSES, Failure, classify_failure
from jobs.repo2docker.failures_docs import main, render_into, render_table

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.example/binder-x:0123456789abcdef0123456789abcdef01234567"
HOST_RESOURCES = ("disk full", "disk quota", "out of memory")


def test_overview_holds_the_table_the_classifier_walks() -> None:
    overview = (ROOT / "docs" / "overview.md").read_text()
    assert render_into(overview) == overview, (
        "run: python -m jobs.repo2docker.failures_docs --write docs/overview.md"
    )
    assert main(["--check", str(ROOT / "docs" / "overview.md")]) == 0


def test_a_stale_table_is_found(tmp_path: Path) -> None:
    overview = (ROOT / "docs" / "overview.md").read_text()
    stale = tmp_path / "overview.md"
    stale.write_text(overview.replace(render_table(), render_table().replace("**yes**", "no")))
    assert main(["--check", str(stale)]) == 1
    assert main(["--write", str(stale)]) == 0
    assert stale.read_text() == overview


def test_the_host_resources_come_before_every_remembered_row() -> None:
    names = [cause.name for cause in CAUSES]
    first_remembered = min(i for i, cause in enumerate(CAUSES) if cause.remembered)
    for name in HOST_RESOURCES:
        assert names.index(name) < first_remembered
        assert not CAUSES[names.index(name)].remembered


def test_only_the_commits_own_failures_are_remembered() -> None:
    remembered = {cause.name for cause in CAUSES if cause.remembered}
    assert remembered == {"step failed", "Dockerfile invalid", "environment refused"}


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("fatal: write error: No space left on device", "a disk is full: "),
        ("error: unable to write file x.bin: Disk quota exceeded", "a disk quota is used up: "),
    ],
)
def test_a_host_resource_in_a_legacy_step_is_not_the_commits(line: str, cause: str) -> None:
    # repo2docker 2024.7's wording of a failed RUN step (golden step_failed), after a
    # line of the step's own output naming the host's resource
    lines = [
        LogLine("building", "Step 5/5 : RUN git clone big"),
        LogLine("building", line),
        LogLine("failed", "The command '/bin/sh -c git clone big' returned a non-zero code: 128"),
    ]
    failure = classify_failure(1, lines, IMAGE)
    assert not failure.remember
    assert cause in failure.message


def test_the_last_row_takes_anything() -> None:
    assert classify_failure(7, [], IMAGE) == Failure("repo2docker exited with code 7")
