"""Medians and spread across several ``bench.run`` results files, as a Markdown table.

``.venv/bin/python -m bench.summarize [FILE ...]``; without files: every full (not
``--quick``) run in bench/results/ that ran all three benchmarks;
``.venv/bin/python -m bench.summarize --features``: every full, unprofiled run that ran
``webhooks``, ``stream_cache_hits`` and ``stream_watchers``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from .common import BINDERHUB, FEATURE_BENCHMARKS, GOALS, HIGHER_IS_BETTER, RESULTS_DIR, median_ci95

# (label, path in the results, unit, goal/BinderHub key)
METRICS: list[tuple[str, tuple[str, ...], str, str | None]] = [
    ("Cache hit, SHA: median", ("cache_hit", "sha", "median_ms"), "ms", "cache_hit_sha_median_ms"),
    ("Cache hit, SHA: p99", ("cache_hit", "sha", "p99_ms"), "ms", "cache_hit_sha_p99_ms"),
    (
        "Cache hit, SHA: first request (registry HEAD)",
        ("cache_hit", "sha", "first_request_ms"),
        "ms",
        None,
    ),
    (
        "Cache hit, SHA: server CPU per request",
        ("cache_hit", "sha", "server_cpu_us_per_request"),
        "µs",
        None,
    ),
    (
        "Cache hit, known branch: median",
        ("cache_hit", "branch", "median_ms"),
        "ms",
        "cache_hit_branch_median_ms",
    ),
    ("Cache hit, known branch: p99", ("cache_hit", "branch", "p99_ms"), "ms", None),
    (
        "Cache hit, branch: first request (git ls-remote)",
        ("cache_hit", "branch", "first_request_ms"),
        "ms",
        None,
    ),
    (
        "Cache hit, known branch: server CPU per request",
        ("cache_hit", "branch", "server_cpu_us_per_request"),
        "µs",
        None,
    ),
    ("GET /health (floor): median", ("cache_hit", "health", "median_ms"), "ms", None),
    ("GET /health (floor): p99", ("cache_hit", "health", "p99_ms"), "ms", None),
    (
        "Pipeline overhead (finished_at), median of pairs",
        ("pipeline", "overhead_median_s"),
        "s",
        "pipeline_overhead_median_s",
    ),
    (
        "Pipeline overhead (5 ms polling), median of pairs",
        ("pipeline", "overhead_by_polling_median_s"),
        "s",
        None,
    ),
    ("Pipeline: service POST -> finished_at, median", ("pipeline", "service_median_s"), "s", None),
    ("Pipeline: bare repo2docker, median", ("pipeline", "bare_median_s"), "s", None),
    ("Pipeline: POST answered (202), median", ("pipeline", "post_answer_median_ms"), "ms", None),
    ("Idle RSS after start-up", ("memory", "startup", "VmRSS"), "MiB", "idle_rss_mib"),
    ("Idle PSS after start-up", ("memory", "startup", "Pss"), "MiB", None),
    (
        "Idle RSS after cache-hit benchmark",
        ("memory", "after_cache_hit", "VmRSS"),
        "MiB",
        "idle_rss_mib",
    ),
    ("Idle PSS after cache-hit benchmark", ("memory", "after_cache_hit", "Pss"), "MiB", None),
    (
        "Idle RSS after pipeline benchmark",
        ("memory", "after_pipeline", "VmRSS"),
        "MiB",
        "idle_rss_mib",
    ),
    ("Idle PSS after pipeline benchmark", ("memory", "after_pipeline", "Pss"), "MiB", None),
    ("Server start -> /health answers", ("memory", "startup_s"), "s", None),
    # bench/features.py
    ("Webhooks, closed loop (8 conn.): median", ("webhooks", "closed", "median_ms"), "ms", None),
    ("Webhooks, closed loop: p99", ("webhooks", "closed", "p99_ms"), "ms", "webhook_p99_ms"),
    (
        "Webhooks, closed loop: deliveries/s",
        ("webhooks", "closed", "throughput_per_s"),
        "/s",
        "webhook_throughput_per_s",
    ),
    (
        "Webhooks, closed loop: server CPU per delivery",
        ("webhooks", "closed", "server_cpu_us_per_delivery"),
        "µs",
        None,
    ),
    ("Webhooks, 250/s offered: median", ("webhooks", "open250", "median_ms"), "ms", None),
    ("Webhooks, 250/s offered: p99", ("webhooks", "open250", "p99_ms"), "ms", "webhook_p99_ms"),
    (
        "Webhooks, 250/s offered: achieved /s",
        ("webhooks", "open250", "throughput_per_s"),
        "/s",
        None,
    ),
    ("Webhooks, 500/s offered: median", ("webhooks", "open500", "median_ms"), "ms", None),
    ("Webhooks, 500/s offered: p99", ("webhooks", "open500", "p99_ms"), "ms", "webhook_p99_ms"),
    (
        "Webhooks, 500/s offered: achieved /s",
        ("webhooks", "open500", "throughput_per_s"),
        "/s",
        None,
    ),
    ("Webhooks: server RSS idle before", ("webhooks", "idle", "VmRSS"), "MiB", None),
    ("Webhooks: server RSS after", ("webhooks", "after", "VmRSS"), "MiB", None),
    ("Webhooks: server PSS after", ("webhooks", "after", "Pss"), "MiB", None),
    (
        "Stream cache hit x50, SHA: median of burst medians",
        ("stream_cache_hits", "sha", "median_of_burst_medians_ms"),
        "ms",
        "stream_cache_hit_median_ms",
    ),
    (
        "Stream cache hit x50, SHA: median of burst p99s",
        ("stream_cache_hits", "sha", "median_of_burst_p99s_ms"),
        "ms",
        "stream_cache_hit_p99_ms",
    ),
    (
        "Stream cache hit x50, SHA: first (warm-up) burst median",
        ("stream_cache_hits", "sha", "warmup_burst", "median_ms"),
        "ms",
        None,
    ),
    (
        "Stream cache hit x50, SHA: server CPU per request",
        ("stream_cache_hits", "sha", "server_cpu_us_per_request"),
        "µs",
        None,
    ),
    (
        "Stream cache hit x50, branch: median of burst medians",
        ("stream_cache_hits", "branch", "median_of_burst_medians_ms"),
        "ms",
        None,
    ),
    (
        "Stream cache hit x50, branch: median of burst p99s",
        ("stream_cache_hits", "branch", "median_of_burst_p99s_ms"),
        "ms",
        None,
    ),
    (
        "Stream cache hit x50, branch: server CPU per request",
        ("stream_cache_hits", "branch", "server_cpu_us_per_request"),
        "µs",
        None,
    ),
    (
        "Same burst x50, GET /versions (plain JSON, floor): median of burst medians",
        ("stream_cache_hits", "floor_versions", "median_of_burst_medians_ms"),
        "ms",
        None,
    ),
    (
        "Same burst x50, GET /versions: server CPU per request",
        ("stream_cache_hits", "floor_versions", "server_cpu_us_per_request"),
        "µs",
        None,
    ),
    ("Stream watchers: clients ready", ("stream_watchers", "ready_same_image"), "", None),
    (
        "Stream watchers: build end -> first ready",
        ("stream_watchers", "end_to_first_ready_ms"),
        "ms",
        None,
    ),
    (
        "Stream watchers: build end -> median ready",
        ("stream_watchers", "end_to_median_ready_ms"),
        "ms",
        None,
    ),
    (
        "Stream watchers: build end -> last ready",
        ("stream_watchers", "end_to_last_ready_ms"),
        "ms",
        None,
    ),
    (
        "Stream watchers: build end -> first client reads the last log line",
        ("stream_watchers", "end_to_first_prev_event_ms"),
        "ms",
        None,
    ),
    (
        "Stream watchers: build end -> last client reads the last log line",
        ("stream_watchers", "end_to_last_prev_event_ms"),
        "ms",
        None,
    ),
    ("Stream watchers: server RSS idle", ("stream_watchers", "idle", "VmRSS"), "MiB", None),
    ("Stream watchers: server RSS peak", ("stream_watchers", "rss_peak_mib"), "MiB", None),
    ("Stream watchers: server PSS idle", ("stream_watchers", "idle", "Pss"), "MiB", None),
    ("Stream watchers: server PSS peak", ("stream_watchers", "pss_peak_mib"), "MiB", None),
    ("Stream watchers: build time", ("stream_watchers", "build_s"), "s", None),
]


def dig(data: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if value is None else float(value)


def fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args != ["--features"]:
        files = [Path(a) for a in args]
    else:
        features = "--features" in args or False
        files = [
            p
            for p in sorted(RESULTS_DIR.glob("*.json"))
            if not p.stem.endswith(("-quick", "-profiled"))
            and (
                set(json.loads(p.read_text()).get("selected", [])) >= set(FEATURE_BENCHMARKS)
                if features
                else set(json.loads(p.read_text()).get("selected", [])) >= {"cache_hit", "pipeline"}
            )
        ]
    runs = [json.loads(p.read_text()) for p in files]
    if not runs:
        print("no results", file=sys.stderr)
        return 1
    print(f"{len(runs)} runs: " + ", ".join(p.name for p in files))
    loads = [r["machine"].get("loadavg_at_start", [0])[0] for r in runs]
    print(f"1-min load average at the start of the runs: {', '.join(f'{x:.2f}' for x in loads)}")
    phase_loads = [
        f"{name}: " + " / ".join(f"{v:.1f}" for v in values)
        for name, values in (
            ("webhooks", [r["webhooks"]["closed"]["loadavg"][0] for r in runs if "webhooks" in r]),
            (
                "stream cache hits",
                [
                    r["stream_cache_hits"]["sha"]["loadavg"][0]
                    for r in runs
                    if "stream_cache_hits" in r
                ],
            ),
            (
                "stream watchers",
                [r["stream_watchers"]["loadavg"][0] for r in runs if "stream_watchers" in r],
            ),
        )
        if values
    ]
    if phase_loads:
        print("1-min load average as each benchmark began: " + "; ".join(phase_loads))
    print()
    print("| measure | median of runs | min..max | per run | goal | BinderHub | verdict |")
    print("|---|---:|---:|---|---:|---:|---|")
    for label, path, unit, key in METRICS:
        values = [v for v in (dig(r, path) for r in runs) if v is not None]
        if not values:
            continue
        median = statistics.median(values)
        goal = GOALS.get(key or "")
        ref = BINDERHUB.get(key or "")
        ok = (
            None
            if goal is None
            else (median >= goal if key in HIGHER_IS_BETTER else median <= goal)
        )
        verdict = "" if ok is None else ("met" if ok else "**missed**")
        cmp = "≥" if key in HIGHER_IS_BETTER else "≤"
        print(
            f"| {label} | {fmt(median)} {unit} | {fmt(min(values))}..{fmt(max(values))} | "
            f"{' / '.join(fmt(v) for v in values)} | "
            f"{'' if goal is None else f'{cmp} {goal:g} {unit}'} | "
            f"{'' if ref is None else f'{ref:g} {unit}'} | {verdict} |"
        )
    pooled(runs)
    return 0


def pooled(runs: list[dict[str, Any]]) -> None:
    """The pipeline pairs of all runs together: more pairs, a tighter median."""
    rows = [row for r in runs for row in r.get("pipeline", {}).get("rows", [])]
    if not rows:
        return
    print()
    print(f"Pipeline pairs of all runs pooled (n = {len(rows)}):")
    print()
    print("| quantity | median | ~95% CI of the median |")
    print("|---|---:|---:|")

    def line(label: str, values: list[float], unit: str = "s") -> None:
        lo, hi = median_ci95(values)
        median = statistics.median(values)
        print(f"| {label} | {fmt(median)} {unit} | {fmt(lo)} .. {fmt(hi)} {unit} |")

    line("overhead (finished_at - POST sent) - bare", [r["overhead_s"] for r in rows])
    line("overhead, by 5 ms polling", [r["overhead_by_polling_s"] for r in rows])
    line("service: POST sent -> finished_at", [r["by_finished_at_s"] for r in rows])
    line("bare repo2docker", [r["bare_s"] for r in rows])
    line("POST answered (202)", [r["post_answer_s"] * 1000 for r in rows], "ms")
    line("created_at -> started_at", [r["scheduled_s"] * 1000 for r in rows], "ms")
    cpu = [r["server_cpu_s"] for r in rows if "server_cpu_s" in r]
    if cpu:
        line("server CPU time per build", cpu)
    labels = {
        "to_tagged_s": "start -> image tagged (clone + build)",
        "tag_to_pushed_s": "tagged -> pushed",
        "pushed_to_end_s": "pushed -> end (service: finished_at)",
    }
    for phase, label in labels.items():
        diffs = [
            r["phases"][phase] - r["bare_phases"][phase]
            for r in rows
            if "bare_phases" in r
            and r["phases"][phase] is not None
            and r["bare_phases"][phase] is not None
        ]
        if diffs:
            line(f"paired difference, {label}", diffs)


if __name__ == "__main__":
    sys.exit(main())
