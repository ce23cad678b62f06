"""Golden tests of ``jobs.phases`` on the output of real runs, with the second (since
the process started) each line was read at:

- first_build_buildkit: repo2docker 2026.4.0 (builder/'s ``buildkit`` engine, buildx
  v0.38.2, buildkitd v0.34.2), a first build with the registry cache: image pushed at
  4.9-5.0 s, then the cache exported
- cache_export_stalled: the same, through a proxy that held the PUT of the
  ``buildcache`` manifest: the image pushed at 1.8 s, the cache export silent from
  2.3 s until the proxy stopped at 46 s
- clone_stalled: a git server that accepted the connection and never answered
- build_legacy: repo2docker 2024.7.0 and Docker's legacy builder (its push progress
  lines carry ``progress`` and are dropped, as ``parse_log_line`` drops them)
- cache_export_failed (repo2docker_2026_failures, without times: one second a line):
  BuildKit ran the cache export beside the image's
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.model import LogLine
from jobs.repo2docker.log_lines import parse_log_line
from jobs.repo2docker.phases import Expired, Phase, PhaseTracker
from jobs.settings import PhaseTimeouts

GOLDEN = Path(__file__).parent / "golden"
LIMITS = PhaseTimeouts(fetch=60, build=600, push=30, cache_export=10)


def timed_lines(case: str) -> list[tuple[float, LogLine]]:
    out = []
    for raw in (GOLDEN / "phases" / f"{case}.log").read_text().splitlines():
        seconds, _, text = raw.strip().partition(" ")
        line = parse_log_line(text)
        if line is not None:
            out.append((float(seconds), line))
    return out


def follow(lines: list[tuple[float, LogLine]]) -> PhaseTracker:
    tracker = PhaseTracker(start=0.0)
    for now, line in lines:
        tracker.feed(line, now)
    return tracker


def test_a_first_build_goes_through_every_phase() -> None:
    tracker = follow(timed_lines("first_build_buildkit"))
    assert tracker.started == {
        Phase.FETCH: 0.0,
        Phase.BUILD: 0.523,
        Phase.PUSH: 2.631,
        Phase.CACHE_EXPORT: 5.013,
    }
    assert tracker.ended == {
        Phase.FETCH: 0.523,
        Phase.BUILD: 2.631,
        Phase.PUSH: 5.013,
        Phase.CACHE_EXPORT: 5.014,
    }
    assert tracker.pushed_at == 5.013
    assert tracker.active == []
    assert tracker.deadline(LIMITS) == float("inf")
    assert tracker.expired(LIMITS, 1e9) is None


def test_a_silent_cache_export_after_the_push_is_cut() -> None:
    lines = timed_lines("cache_export_stalled")
    silent = [(now, line) for now, line in lines if now < 3]
    tracker = follow(silent)
    assert tracker.active == [Phase.CACHE_EXPORT]
    assert tracker.pushed_at == 1.823
    assert tracker.deadline(LIMITS) == pytest.approx(1.823 + 10)
    assert tracker.expired(LIMITS, 11.8) is None
    expired = tracker.expired(LIMITS, 11.9)
    assert expired == Expired(Phase.CACHE_EXPORT, 10, pushed=True)
    assert expired.message == (
        "the layer cache export did not finish within 10 seconds"
        " (limits.phase_timeouts.cache_export) after the image was pushed; it was cut"
    )
    # the stall ended with an error line at 46 s: the export is over
    tracker = follow(lines)
    assert tracker.active == []


def test_a_silent_git_server_runs_out_the_fetch() -> None:
    tracker = follow(timed_lines("clone_stalled"))
    assert tracker.active == [Phase.FETCH]
    assert tracker.deadline(LIMITS) == 60
    expired = tracker.expired(LIMITS, 60)
    assert expired == Expired(Phase.FETCH, 60, pushed=False)
    assert expired.message == (
        "fetching the repository did not finish within 60 seconds (limits.phase_timeouts.fetch)"
    )


def test_repo2docker_2024_7_phases() -> None:
    tracker = follow(timed_lines("build_legacy"))
    assert list(tracker.started) == [Phase.FETCH, Phase.BUILD, Phase.PUSH]
    assert tracker.started[Phase.PUSH] == 2.855  # Successfully tagged
    assert tracker.pushed_at == 3.227  # Successfully pushed
    assert tracker.active == []


def test_a_cache_export_before_the_image_export_counts_from_its_own_start() -> None:
    raw = (GOLDEN / "repo2docker_2026_failures" / "cache_export_failed.log").read_text()
    lines = [line for line in map(parse_log_line, raw.splitlines()) if line is not None]
    messages = [line.message for line in lines]
    cache_start = next(
        i for i, m in enumerate(messages) if m.endswith("exporting cache to registry")
    )
    cache_error = next(i for i, m in enumerate(messages) if m.startswith("#10 ERROR"))
    image_start = next(i for i, m in enumerate(messages) if m.endswith("exporting to image"))
    assert cache_start < cache_error < image_start
    tracker = PhaseTracker(start=0.0)
    for second, line in enumerate(lines[:cache_error]):
        tracker.feed(line, float(second))
    assert tracker.active == [Phase.CACHE_EXPORT]
    assert tracker.deadline(LIMITS) == cache_start + 10
    assert tracker.expired(LIMITS, cache_start + 10.0) == Expired(
        Phase.CACHE_EXPORT, 10, pushed=False
    )
    for second, line in enumerate(lines[cache_error : image_start + 1], start=cache_error):
        tracker.feed(line, float(second))
    assert tracker.active == [Phase.PUSH]
    assert tracker.deadline(LIMITS) == image_start + 30


def test_a_cache_export_beside_the_push_waits_for_it() -> None:
    tracker = PhaseTracker(start=0.0)
    for now, message in enumerate(
        ["Using DockerBuildPack builder", "#8 exporting to image", "#9 exporting cache to registry"]
    ):
        tracker.feed(LogLine("building", message), float(now))
    assert tracker.active == [Phase.PUSH, Phase.CACHE_EXPORT]
    assert tracker.deadline(LIMITS) == 1 + 30  # the push's: the cache waits for it
    assert tracker.expired(LIMITS, 20.0) is None
    tracker.feed(LogLine("building", "#8 DONE 25.0s"), 25.0)
    assert tracker.pushed_at == 25.0
    assert tracker.deadline(LIMITS) == 25 + 10
    assert tracker.expired(LIMITS, 35.0) == Expired(Phase.CACHE_EXPORT, 10, pushed=True)


def test_a_phase_without_a_limit_never_expires() -> None:
    tracker = follow(timed_lines("clone_stalled"))
    unlimited = PhaseTimeouts(fetch=None)
    assert tracker.deadline(unlimited) == float("inf")
    assert tracker.expired(unlimited, 1e9) is None
