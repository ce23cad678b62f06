"""Benchmarks of a real ``binderhub-service serve`` against a real registry and git daemon.

Run from the repository root: ``.venv/bin/python -m bench.run [--only NAME] [--quick]``.

- ``cache_hit``: latency of POST /api/v1/builds answered "cached" (image exists), for a
  full SHA and for a branch the service resolved moments before, measured by a
  keep-alive client in another process (bench/client.py); GET /health as a floor.
- ``pipeline``: trigger -> image in the registry, minus a bare repo2docker run of the
  same kind of commit with the same flags, interleaved A B A B ..., fresh commits.
- ``memory``: VmRSS and PSS of the server after start-up (and after the other
  benchmarks when they run).
- ``rebuild_cache`` (only with ``--only``): a content-only commit rebuilt on a builder
  whose local cache was emptied, against the cold build (bench/rebuild_cache.py).
- ``record_cache_hit`` (only with ``--only``): a record of every content provider
  (Zenodo, Figshare, Dataverse, HydroShare, CKAN, Software Heritage, Mercurial, a gist)
  asked again once resolved, through the API and the stream, the provider not asked
  (bench/record_cache_hit.py, bench/record_cases.py).

Everything is started here on free loopback ports in a temporary directory and
stopped at the end; images this run built are removed from the Docker daemon.
Results: a table on standard output and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.settings import load_settings
from testkit.components import (
    GitServer,
    Registry,
    dockerfile,
    start_git_server,
    start_registry,
)
from testkit.postgres import start_postgres

from . import features, rebuild_cache
from .common import (
    AUTH_HEADERS,
    BENCHMARKS,
    BINDERHUB,
    DATABASE,
    FEATURE_BENCHMARKS,
    GOALS,
    HIGHER_IS_BETTER,
    PIPELINE_DOCKERFILE,
    POLL_INTERVAL_S,
    PROFILE,
    RESULTS_DIR,
    ROOT,
    Bare,
    Server,
    cpu_seconds,
    latency_summary,
    machine_info,
    median_ci95,
    memory_of,
    registry_has,
    run_client,
    say,
    start_server,
)
from .quota_burst import bench_quota_burst
from .record_cache_hit import bench_record_cache_hit


class Api:
    """A keep-alive connection from this process, for the pipeline benchmark."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def fresh(self) -> None:
        """A new connection, used once so it is warm: uvicorn closes idle ones after 5 s."""
        self.conn.close()
        self.conn = self._connect()
        self.call("GET", "/health")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        headers.update(AUTH_HEADERS)
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read())

    def close(self) -> None:
        self.conn.close()


class DockerEvents:
    """``docker events`` for images, in the background: when each image was tagged
    (its build ended) and pushed (its push ended), by the daemon's clock."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.events: dict[tuple[str, str], float] = {}
        self._process = subprocess.Popen(
            [
                "/usr/bin/docker",
                "events",
                "--format",
                "{{json .}}",
                "--filter",
                "type=image",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(line)
                # a tag event names the image in Attributes.name; a push event in its
                # id (Attributes.name has no tag there)
                if event["Action"] == "push":
                    name = event["id"]
                else:
                    name = event["Actor"]["Attributes"].get("name", "")
                if name.startswith(self._prefix):
                    self.events.setdefault((event["Action"], name), event["timeNano"] / 1e9)

    def wait_for(self, action: str, image: str, timeout: float = 5.0) -> float | None:
        deadline = time.monotonic() + timeout
        while (action, image) not in self.events and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.events.get((action, image))

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def phases(events: DockerEvents, image: str, start: float, end: float) -> dict[str, float | None]:
    """start -> build done (tag) -> push done -> end, from docker's events."""
    tagged = events.wait_for("tag", image)
    pushed = events.wait_for("push", image)
    return {
        "to_tagged_s": None if tagged is None else tagged - start,
        "tag_to_pushed_s": None if tagged is None or pushed is None else pushed - tagged,
        "pushed_to_end_s": None if pushed is None else end - pushed,
    }


# -- benchmarks ---------------------------------------------------------------


def bench_cache_hit(
    server: Server,
    registry: Registry,
    git_server: GitServer,
    bare: Bare,
    *,
    n: int,
    warmup: int,
) -> dict[str, Any]:
    from jobs.naming import image_name_for
    from jobs.sources.specs import repo_spec

    repo = git_server.create_repo(
        "cache-hit", {"Dockerfile": dockerfile("COPY . /srv/repo/"), "token.txt": "cache-hit\n"}
    )
    sha = repo.commit({"token.txt": uuid.uuid4().hex + "\n"}, "cache-hit commit")
    settings = load_settings(server.config_path)
    url = repo_spec(repo.url, sha).url
    image = image_name_for(settings.image_prefix, url, sha)
    say(f"building {image} with bare repo2docker for the cache-hit benchmark")
    bare.run(server.config_path, image, repo.url, sha)
    assert registry_has(registry, image), image

    results: dict[str, Any] = {"image": image}
    ttl = settings.ref_cache_seconds
    cases = [
        ("sha", ["--build", repo.url, sha]),
        ("branch", ["--build", repo.url, "main"]),
        ("health", ["--get", "/health"]),
    ]
    for name, args in cases:
        say(f"cache hit, {name}: {warmup} warm-up + {n} requests")
        cpu_before = cpu_seconds(server.pid)
        out = run_client(server.port, args, n, warmup)
        cpu_after = cpu_seconds(server.pid)
        summary = latency_summary(out["latencies_ns"])
        summary["first_request_ms"] = out["first_ns"] / 1e6
        summary["span_s"] = out["span_s"]
        summary["server_cpu_us_per_request"] = (cpu_after - cpu_before) / (n + warmup) * 1e6
        summary["latencies_ns"] = out["latencies_ns"]
        if name == "branch":
            # the branch was resolved (git ls-remote) by the first warm-up request;
            # every later one must fall inside ref_cache_seconds of it
            summary["ref_cache_seconds"] = ttl
            summary["inside_ttl"] = out["span_s"] < ttl
            if not summary["inside_ttl"]:
                raise RuntimeError(
                    f"the branch run took {out['span_s']:.1f}s, longer than the "
                    f"{ttl:g}s ref cache: lower --n"
                )
            sample = out["sample_body"]
            assert sample["sha"] == sha, sample
        results[name] = summary
    return results


def bench_pipeline(
    server: Server, registry: Registry, git_server: GitServer, bare: Bare, *, pairs: int
) -> dict[str, Any]:
    repo = git_server.create_repo(
        "pipeline", {"Dockerfile": PIPELINE_DOCKERFILE, "token.txt": "initial\n"}
    )
    bare_image_repo = f"{registry.host}/bare-pipeline"
    api = Api(server.port)
    events = DockerEvents(f"{registry.host}/")
    rows: list[dict[str, Any]] = []

    def service_side() -> dict[str, Any]:
        sha = repo.commit({"token.txt": uuid.uuid4().hex + "\n"}, "service side")
        api.fresh()
        load = os.getloadavg()[0]
        sent = time.time()
        status, body = api.call("POST", "/api/v1/builds", {"repo": repo.url, "ref": sha})
        answered = time.time()
        if status != 202 or body.get("outcome") != "created":
            raise RuntimeError(f"expected a new build, got HTTP {status}: {body}")
        build_id, image = body["id"], body["image"]
        cpu_before = cpu_seconds(server.pid)
        # Poll the API every 5 ms only once Docker reports the push done, so that the
        # polling does not load the machine during the build; until then every 0.25 s
        # (to notice a failed build). The primary figure does not depend on polling:
        # it is the record's finished_at (the service's wall clock) minus ``sent``.
        polls = 0
        while True:
            status, record = api.call("GET", f"/api/v1/builds/{build_id}")
            seen = time.time()
            polls += 1
            if record["state"] not in ("queued", "running"):
                break
            interval = POLL_INTERVAL_S if ("push", image) in events.events else 0.25
            time.sleep(max(0.0, interval - (time.time() - seen)))
        server_cpu = cpu_seconds(server.pid) - cpu_before
        if record["state"] != "built":
            raise RuntimeError(f"build {build_id} ended {record['state']}: {record['error']}")
        assert registry_has(registry, record["image"])
        return {
            "sha": sha,
            "build_id": build_id,
            "by_finished_at_s": record["finished_at"] - sent,
            "by_polling_s": seen - sent,
            "post_answer_s": answered - sent,
            "queued_s": record["created_at"] - sent,
            "scheduled_s": record["started_at"] - record["created_at"],
            "executor_s": record["finished_at"] - record["started_at"],
            "polls": polls,
            "server_cpu_s": server_cpu,
            "loadavg": load,
            "phases": phases(events, record["image"], sent, record["finished_at"]),
        }

    def bare_side() -> dict[str, Any]:
        sha = repo.commit({"token.txt": uuid.uuid4().hex + "\n"}, "bare side")
        image = f"{bare_image_repo}:{sha}"
        load = os.getloadavg()[0]
        started, ended = bare.run(server.config_path, image, repo.url, sha)
        assert registry_has(registry, image), image
        return {
            "sha": sha,
            "bare_s": ended - started,
            "loadavg": load,
            "phases": phases(events, image, started, ended),
        }

    try:
        say("pipeline: warm-up pair (not counted: first pushes of the base layers)")
        service_side()
        bare_side()
        for i in range(pairs):
            # A B, B A, A B, ...: still interleaved, and a drift during the run (the
            # registry and the Docker daemon grow) favours neither side
            if i % 2 == 0:
                a = service_side()
                b = bare_side()
            else:
                b = bare_side()
                a = service_side()
            row = {
                "order": "AB" if i % 2 == 0 else "BA",
                **a,
                "bare_sha": b["sha"],
                "bare_s": b["bare_s"],
                "bare_loadavg": b["loadavg"],
                "bare_phases": b["phases"],
                "overhead_s": a["by_finished_at_s"] - b["bare_s"],
                "overhead_by_polling_s": a["by_polling_s"] - b["bare_s"],
            }
            rows.append(row)
            say(
                f"pipeline pair {i + 1}/{pairs}: service {a['by_finished_at_s']:.3f}s "
                f"(polled {a['by_polling_s']:.3f}s), bare {b['bare_s']:.3f}s, "
                f"overhead {row['overhead_s'] * 1000:+.0f} ms"
            )
    finally:
        api.close()
        events.stop()

    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    def phase_medians(side: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for phase in ("to_tagged_s", "tag_to_pushed_s", "pushed_to_end_s"):
            values = [r[side][phase] for r in rows if r[side][phase] is not None]
            out[phase] = statistics.median(values) if values else None
        return out

    def paired_phase_differences() -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for phase in ("to_tagged_s", "tag_to_pushed_s", "pushed_to_end_s"):
            diffs = [
                r["phases"][phase] - r["bare_phases"][phase]
                for r in rows
                if r["phases"][phase] is not None and r["bare_phases"][phase] is not None
            ]
            out[phase] = statistics.median(diffs) if diffs else None
        return out

    return {
        "pairs": len(rows),
        "poll_interval_s": POLL_INTERVAL_S,
        "overhead_median_s": med("overhead_s"),
        "overhead_by_polling_median_s": med("overhead_by_polling_s"),
        "overhead_ci95_s": median_ci95([r["overhead_s"] for r in rows]),
        "overhead_min_s": min(r["overhead_s"] for r in rows),
        "overhead_max_s": max(r["overhead_s"] for r in rows),
        "service_median_s": med("by_finished_at_s"),
        "bare_median_s": med("bare_s"),
        "post_answer_median_ms": med("post_answer_s") * 1000,
        "scheduled_median_ms": med("scheduled_s") * 1000,
        "server_cpu_per_build_median_s": med("server_cpu_s"),
        "service_phases_median_s": phase_medians("phases"),
        "bare_phases_median_s": phase_medians("bare_phases"),
        "phase_overhead_median_s": paired_phase_differences(),
        "rows": rows,
    }


# -- reporting ----------------------------------------------------------------


def verdict(value: float, goal: float, key: str = "") -> str:
    if key in HIGHER_IS_BETTER:
        return "met" if value >= goal else "MISSED"
    return "met" if value <= goal else "MISSED"


def table(results: dict[str, Any]) -> str:
    lines = [f"{'measure':<44} {'value':>12} {'goal':>9} {'BinderHub':>10}  verdict"]
    lines.append("-" * len(lines[0]))

    def row(label: str, value: float, unit: str, key: str | None = None) -> None:
        goal = GOALS.get(key or "")
        ref = BINDERHUB.get(key or "")
        lines.append(
            f"{label:<44} {value:>9.3f} {unit:<2} "
            f"{(f'{goal:g}' if goal is not None else ''):>9} "
            f"{(f'{ref:g}' if ref is not None else ''):>10}  "
            f"{verdict(value, goal, key or '') if goal is not None else ''}"
        )

    ch = results.get("cache_hit")
    if ch:
        for case, label in (("sha", "SHA"), ("branch", "known branch")):
            s = ch[case]
            row(f"cache hit, {label}: median", s["median_ms"], "ms", f"cache_hit_{case}_median_ms")
            row(f"cache hit, {label}: p99", s["p99_ms"], "ms", f"cache_hit_{case}_p99_ms")
            row(f"cache hit, {label}: first request", s["first_request_ms"], "ms")
            row(f"cache hit, {label}: server CPU/request", s["server_cpu_us_per_request"], "us")
        s = ch["health"]
        row("GET /health (floor): median", s["median_ms"], "ms")
        row("GET /health (floor): p99", s["p99_ms"], "ms")
    pl = results.get("pipeline")
    if pl:
        row(
            f"pipeline overhead, median of {pl['pairs']} pairs",
            pl["overhead_median_s"],
            "s",
            "pipeline_overhead_median_s",
        )
        lo, hi = pl["overhead_ci95_s"]
        row("  95% CI of that median: low", lo, "s")
        row("  95% CI of that median: high", hi, "s")
        row("  overhead, min", pl["overhead_min_s"], "s")
        row("  overhead, max", pl["overhead_max_s"], "s")
        row(
            f"  overhead by polling ({pl['poll_interval_s'] * 1000:g} ms)",
            pl["overhead_by_polling_median_s"],
            "s",
        )
        row("  service: POST -> finished_at, median", pl["service_median_s"], "s")
        row("  bare repo2docker, median", pl["bare_median_s"], "s")
        row("  POST answered (202), median", pl["post_answer_median_ms"], "ms")
        row("  created_at -> started_at, median", pl["scheduled_median_ms"], "ms")
        row("  server CPU per build, median", pl["server_cpu_per_build_median_s"], "s")
        labels = {
            "to_tagged_s": "start -> image tagged (clone+build)",
            "tag_to_pushed_s": "tagged -> pushed",
            "pushed_to_end_s": "pushed -> end",
        }
        for phase, label in labels.items():
            for side, key in (
                ("service", "service_phases_median_s"),
                ("bare", "bare_phases_median_s"),
            ):
                value = pl[key][phase]
                if value is not None:
                    row(f"  {side}: {label}", value, "s")
            diff = pl["phase_overhead_median_s"][phase]
            if diff is not None:
                row(f"  paired difference: {label}", diff, "s")
    mem = results.get("memory", {})
    for when, snap in mem.items():
        if not isinstance(snap, dict) or "VmRSS" not in snap:
            continue
        row(f"RSS {when.replace('_', ' ')}", snap["VmRSS"], "Mi", "idle_rss_mib")
        row(f"PSS {when.replace('_', ' ')}", snap["Pss"], "Mi")
    if "startup_s" in mem:
        row("server start -> /health answers", mem["startup_s"], "s")
    wh = results.get("webhooks")
    if wh:
        for phase, label in (
            ("closed", "closed loop"),
            ("open250", "250/s offered"),
            ("open500", "500/s offered"),
        ):
            s = wh.get(phase)
            if not s:
                continue
            row(f"webhook {label}: median", s["median_ms"], "ms")
            row(f"webhook {label}: p99", s["p99_ms"], "ms", "webhook_p99_ms")
            row(
                f"webhook {label}: deliveries/s",
                s["throughput_per_s"],
                "/s",
                "webhook_throughput_per_s" if phase == "closed" else None,
            )
            row(f"webhook {label}: server CPU/delivery", s["server_cpu_us_per_delivery"], "us")
        row("webhook: server RSS idle before", wh["idle"]["VmRSS"], "Mi")
        row("webhook: server RSS after", wh["after"]["VmRSS"], "Mi")
        row("webhook: server RSS after the queue drained", wh["after_drain"]["VmRSS"], "Mi")
    sc = results.get("stream_cache_hits")
    if sc:
        for case, label in (("sha", "SHA"), ("branch", "known branch")):
            s = sc[case]
            row(
                f"stream cache hit x{sc['concurrency']}, {label}: median",
                s["median_of_burst_medians_ms"],
                "ms",
                "stream_cache_hit_median_ms" if case == "sha" else None,
            )
            row(
                f"stream cache hit x{sc['concurrency']}, {label}: p99",
                s["median_of_burst_p99s_ms"],
                "ms",
                "stream_cache_hit_p99_ms" if case == "sha" else None,
            )
            row(f"  {label}: server CPU/request", s["server_cpu_us_per_request"], "us")
        s = sc.get("floor_versions")
        if s:
            row("same burst, GET /versions (floor): median", s["median_of_burst_medians_ms"], "ms")
            row("  /versions: server CPU/request", s["server_cpu_us_per_request"], "us")
    sw = results.get("stream_watchers")
    if sw:
        row(f"stream watchers: ready (of {sw['watchers']})", sw["ready_same_image"], "")
        row("  build end -> first client ready", sw["end_to_first_ready_ms"], "ms")
        row("  build end -> last client ready", sw["end_to_last_ready_ms"], "ms")
        row("  server RSS idle", sw["idle"]["VmRSS"], "Mi")
        row("  server RSS peak", sw["rss_peak_mib"], "Mi")
        row("  server PSS idle", sw["idle"]["Pss"], "Mi")
        row("  server PSS peak", sw["pss_peak_mib"], "Mi")
    rc = results.get("rebuild_cache")
    if rc:
        row(f"rebuild_cache ({rc['executor']}): cold build, median", rc["cold_median_s"], "s")
        row("  content-only rebuild, emptied builder, median", rc["rebuild_median_s"], "s")
        ratio = rc["ratio"]
        lines.append(
            f"{'  rebuild / cold':<44} {ratio:>9.3f}    {rc['goal_ratio']:>9g} {'':>10}  "
            f"{'met' if ratio <= rc['goal_ratio'] else 'MISSED'}"
        )
    qb = results.get("quota_burst")
    if qb:
        row(f"quota burst: builds created (quota {qb['quota']})", qb["builds_created"], "")
        row(f"  answered 429 (of {qb['requests']})", qb["statuses"].get("429", 0), "")
        row("  5xx answers", qb["server_errors"], "")
        if qb["refused"]:
            row("  429: median", qb["refused"]["median_ms"], "ms")
            row("  429: p99", qb["refused"]["p99_ms"], "ms", "quota_refusal_p99_ms")
    rch = results.get("record_cache_hit")
    if rch:
        for case in rch["cases"]:
            row(f"record {case}: first request (resolves)", rch[case]["first_request_ms"], "ms")
            for kind, label in (("api", "POST"), ("stream", "stream")):
                s = rch[case][kind]
                key = "record_cache_hit_median_ms"
                row(f"record cache hit, {case} {label}: median", s["median_ms"], "ms", key)
                row(f"record cache hit, {case} {label}: p99", s["p99_ms"], "ms")
                row("  server CPU/request", s["server_cpu_us_per_request"], "us")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------


@contextlib.contextmanager
def components(workdir: Path) -> Iterator[tuple[Registry, GitServer]]:
    registry = start_registry(workdir / "registry")
    try:
        git_server = start_git_server(workdir / "git" / "repos")
        try:
            yield registry, git_server
        finally:
            git_server.stop()
    finally:
        registry.stop()


def remove_images(registry: Registry) -> None:
    """Remove from the Docker daemon the images this run built (they name our registry)."""
    listed = subprocess.run(
        ["/usr/bin/docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    ours = [name for name in listed if name.startswith(f"{registry.host}/")]
    if ours:
        subprocess.run(["/usr/bin/docker", "image", "rm", *ours], capture_output=True)


def settle(seconds: float) -> None:
    time.sleep(seconds)


def run_original(
    results: dict[str, Any],
    selected: tuple[str, ...],
    workdir: Path,
    registry: Registry,
    git_server: GitServer,
    bare: Bare,
    n: int,
    warmup: int,
    pairs: int,
) -> None:
    """cache_hit, pipeline and memory, on one server."""
    server = start_server(workdir / "service", registry)
    try:
        memory: dict[str, Any] = {"startup_s": server.startup_s}
        results["memory"] = memory
        settle(2.0)
        memory["startup"] = memory_of(server.pid)
        say(f"idle after start-up: RSS {memory['startup']['VmRSS']:.1f} MiB")
        if "cache_hit" in selected:
            results["cache_hit"] = bench_cache_hit(
                server, registry, git_server, bare, n=n, warmup=warmup
            )
            settle(2.0)
            memory["after_cache_hit"] = memory_of(server.pid)
        if "pipeline" in selected:
            results["pipeline"] = bench_pipeline(server, registry, git_server, bare, pairs=pairs)
            settle(2.0)
            memory["after_pipeline"] = memory_of(server.pid)
    finally:
        server.stop()
        shutil.copy(server.log_path, workdir / "service-final.log")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        choices=BENCHMARKS + FEATURE_BENCHMARKS,
        action="append",
        help="run only this benchmark (repeatable); memory is sampled whenever the server "
        "runs; without --only: cache_hit, pipeline, memory",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 requests per cache-hit case (default 1000), 5 pipeline pairs (default 15), "
        "1000 webhook deliveries (default 3000), 3 stream bursts (default 10), "
        "200 stream watchers (default 500)",
    )
    parser.add_argument("--n", type=int, help="measured requests per cache-hit case")
    parser.add_argument("--pairs", type=int, help="pipeline pairs (not counting a warm-up pair)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the servers of the webhooks and stream benchmarks under cProfile, on "
        "during the load only; profiles and reports in bench/results/ (latencies of such "
        "a run are inflated: do not quote them)",
    )
    parser.add_argument("--deliveries", type=int, help="measured webhook deliveries (closed loop)")
    parser.add_argument("--bursts", type=int, help="stream cache-hit bursts of 50")
    parser.add_argument("--watchers", type=int, help="stream clients of the one build")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        action="append",
        help="where the servers keep their state (repeatable: the selected benchmarks run "
        "once per database, one after the other; default sqlite). postgresql: Debian's "
        "PostgreSQL on 127.0.0.1 with its default durability (scripts/ensure-postgres.sh), "
        "a new database for each server",
    )
    parser.add_argument(
        "--rebuild-pairs", type=int, default=3, help="rebuild_cache: (cold, rebuild) pairs"
    )
    parser.add_argument(
        "--rebuild-seconds",
        type=int,
        default=30,
        help="rebuild_cache: seconds the environment step computes",
    )
    args = parser.parse_args(argv)
    selected = tuple(args.only or BENCHMARKS)
    n = args.n or (200 if args.quick else 1000)
    warmup = 50
    pairs = args.pairs or (5 if args.quick else 15)
    if n < 200 or pairs < 5:
        parser.error("the benchmark needs --n >= 200 and --pairs >= 5")
    deliveries = args.deliveries or (1000 if args.quick else 3000)
    bursts = args.bursts or (3 if args.quick else 10)
    watchers = args.watchers or (200 if args.quick else 500)

    os.chdir(ROOT)
    for script in ("ensure-docker.sh", "ensure-base-image.sh", "ensure-test-tools.sh"):
        subprocess.run([ROOT / "scripts" / script], check=True)
    sizes = Sizes(n, warmup, pairs, deliveries, bursts, watchers)
    for database in args.database or ["sqlite"]:
        with state_database(database):
            run_selected(args, selected, sizes, database)
    return 0


@dataclass(frozen=True)
class Sizes:
    n: int
    warmup: int
    pairs: int
    deliveries: int
    bursts: int
    watchers: int


@contextlib.contextmanager
def state_database(database: str) -> Iterator[None]:
    """``DATABASE["url"]`` set for the servers: none (their SQLite files), or a PostgreSQL
    server of this run, removed at the end."""
    if database == "sqlite":
        DATABASE["server"] = None
        yield
        return
    server = start_postgres(fast=False)
    DATABASE["server"] = server
    try:
        yield
    finally:
        DATABASE["server"] = None
        server.remove()


def run_selected(
    args: argparse.Namespace, selected: tuple[str, ...], sizes: Sizes, database: str
) -> None:
    """One run of the selected benchmarks, its table printed and its results written."""
    n, warmup, pairs = sizes.n, sizes.warmup, sizes.pairs
    deliveries, bursts, watchers = sizes.deliveries, sizes.bursts, sizes.watchers

    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "selected": list(selected),
        "quick": args.quick,
        "parameters": {
            "n": n,
            "warmup": warmup,
            "pairs": pairs,
            "deliveries": deliveries,
            "bursts": bursts,
            "watchers": watchers,
        },
        "machine": machine_info(),
        "database": database,
        "goals": GOALS,
        "binderhub": BINDERHUB,
    }
    workdir = Path(tempfile.mkdtemp(prefix="bhs-bench-"))
    say(f"working in {workdir}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.profile:
        PROFILE["dir"] = RESULTS_DIR / f"{stamp}-profiles"
        results["profiled"] = True
    registry: Registry | None = None
    try:
        with components(workdir) as (registry, git_server):
            bare = Bare(workdir / "bare")
            if set(selected) & set(BENCHMARKS):
                run_original(
                    results, selected, workdir, registry, git_server, bare, n, warmup, pairs
                )
            if "webhooks" in selected:
                results["webhooks"] = features.bench_webhooks(
                    workdir / "webhooks", registry, git_server, bare, n=deliveries
                )
            if "stream_cache_hits" in selected:
                results["stream_cache_hits"] = features.bench_stream_cache_hits(
                    workdir / "stream-cache", registry, git_server, bare, bursts=bursts
                )
            if "stream_watchers" in selected:
                results["stream_watchers"] = features.bench_stream_watchers(
                    workdir / "stream-watchers", registry, git_server, watchers=watchers
                )
            if "rebuild_cache" in selected:
                results["rebuild_cache"] = rebuild_cache.bench_local(
                    workdir / "rebuild-cache",
                    registry,
                    git_server,
                    pairs=args.rebuild_pairs,
                    seconds=args.rebuild_seconds,
                )
            if "quota_burst" in selected:
                results["quota_burst"] = bench_quota_burst(
                    workdir / "quota-burst", registry, git_server
                )
            if "record_cache_hit" in selected:
                results["record_cache_hit"] = bench_record_cache_hit(
                    workdir / "record-cache-hit", registry, git_server, n=n, warmup=warmup
                )
            remove_images(registry)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["loadavg_at_end"] = os.getloadavg()

    print(table(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = ("-quick" if args.quick else "") + ("-profiled" if args.profile else "")
    suffix += "" if database == "sqlite" else f"-{database}"
    out = RESULTS_DIR / f"{stamp}{suffix}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    say(f"results written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
