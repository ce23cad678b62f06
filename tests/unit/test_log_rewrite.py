"""The missing layer cache of a first build is a note, not an ``ERROR`` (issue 20).

Golden: the whole output of real first builds with the registry cache (repo2docker
2026.4.0, buildx v0.38.2, buildkitd v0.34.2): one that succeeded
(golden/phases/first_build_buildkit.log) and one whose RUN step failed
(golden/repo2docker_2026_failures/disk_full.log).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.model import LogLine
from jobs.repo2docker.log_lines import (
    NO_CACHE_YET,
    RawLine,
    log_line_from_raw,
    parse_log_line,
    rewrite_line,
)

GOLDEN = Path(__file__).parent / "golden"


def raw_lines(path: Path) -> list[bytes]:
    lines = path.read_text().splitlines()
    if path.parent.name == "phases":  # "<seconds> <line>"
        lines = [line.strip().partition(" ")[2] for line in lines]
    return [line.encode() for line in lines]


@pytest.mark.parametrize(
    ("case", "ref"),
    [
        ("phases/first_build_buildkit.log", "127.0.0.1:55125/t-full1:buildcache"),
        ("repo2docker_2026_failures/disk_full.log", "127.0.0.1:55125/t-full1:buildcache"),
    ],
)
def test_the_missing_cache_of_a_first_build_is_a_note(case: str, ref: str) -> None:
    raws = raw_lines(GOLDEN / case)
    stored = [log_line_from_raw(RawLine(raw, len(raw))) for raw in raws]
    parsed = [parse_log_line(raw.decode()) for raw in raws]
    changed = [(p, s) for p, s in zip(parsed, stored, strict=True) if p != s]
    assert changed == [
        (
            LogLine(
                "building",
                f"#5 ERROR: failed to configure registry cache importer: {ref}: not found",
            ),
            LogLine("building", f"#5 {NO_CACHE_YET}"),
        )
    ]
    assert not [s for s in stored if s is not None and "cache importer" in s.message]


def test_other_errors_are_left_as_they_are() -> None:
    for message in (
        # the cache's registry cannot be reached: that is worth an ERROR
        '#5 ERROR: failed to configure registry cache importer: failed to do request: Head "'
        'http://127.0.0.1:1/v2/t1/manifests/buildcache": dial tcp 127.0.0.1:1: connect: '
        "connection refused",
        '#7 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',
        # a step's own output that happens to say the same
        "#7 0.123 ERROR: failed to configure registry cache importer: x:buildcache: not found",
    ):
        assert rewrite_line(LogLine("building", message)) == LogLine("building", message)
