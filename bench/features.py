"""The push-webhook and BinderHub-stream benchmarks of bench.run.

- ``webhooks``: ingest latency and throughput of ``POST /hooks/github`` (signed
  GitHub push deliveries, fresh ones mixed with redeliveries and same-commit
  deliveries), sent by bench.loadgen from another process.
- ``stream_cache_hits``: bursts of 50 concurrent BinderHub stream requests whose image
  exists; each is timed from its request to its ``ready`` event.
- ``stream_watchers``: 500 stream clients of one real (slow) build: who got ``ready``,
  how long after the build ended, and the server's memory meanwhile.

Each starts its own ``binderhub-service serve`` (its own state file and config) and
stops it at the end. See bench/README.md.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import io
import json
import os
import pstats
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from jobs.naming import image_name_for
from jobs.registry.client import MANIFEST_ACCEPT
from jobs.settings import load_settings
from jobs.sources.specs import repo_spec
from testkit.components import GitRepo, GitServer, Registry, dockerfile, git

from .common import (
    API_TOKEN,
    PROFILE,
    ROOT,
    Bare,
    Server,
    cpu_seconds,
    latency_summary,
    memory_of,
    percentile,
    registry_has,
    say,
    start_server,
    state_rows,
    write_config,
)

FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
PUSH_FIXTURE = FIXTURES / "github-push-branch-update.json"
WEBHOOK_SECRET = secrets.token_hex(20)
SECRET_ENV = "BENCH_WEBHOOK_SECRET"  # noqa: S105 (a variable name)

# the mix of deliveries after the warm-up (fractions of the measured deliveries)
MIX = {"fresh": 0.5, "redelivery": 0.25, "same_commit": 0.25}


def run_loadgen(args: list[str], timeout: float, server: Server | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "BENCH_API_TOKEN": API_TOKEN, SECRET_ENV: WEBHOOK_SECRET},
    )
    if done.returncode != 0:
        log = "" if server is None else server.log_path.read_text(errors="replace")[-3000:]
        alive = "" if server is None else f"server exit code: {server.process.poll()}\n"
        raise RuntimeError(
            f"bench.loadgen {args[:1]} failed:\n{done.stderr[-4000:]}\n{alive}"
            f"server log (end):\n{log}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def builds_by_state(server_config: Path) -> dict[str, int]:
    """Build records by state, read from the server's state (SQLite's WAL: a reader is fine)."""
    rows = state_rows(server_config, "SELECT state, COUNT(*) FROM builds GROUP BY state")
    return {str(state): int(count) for state, count in rows}


@contextlib.contextmanager
def profiled(server: Server, name: str) -> Iterator[None]:
    """With ``bench.run --profile``: the server's cProfile on during the block only;
    the profile and a report of it are saved as bench/results/<run>-profiles/NAME.*"""
    if server.profile_path is None or PROFILE["dir"] is None:
        yield
        return
    server.profile_path.unlink(missing_ok=True)
    os.kill(server.pid, signal.SIGUSR1)
    time.sleep(0.2)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not server.profile_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the dump is written in one go; let it finish
        out_dir = PROFILE["dir"]
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{name}.prof"
        shutil.copy(server.profile_path, target)
        report = profile_report(target)
        (out_dir / f"{name}.txt").write_text(report)
        say(f"profile of {name}: {target.relative_to(ROOT)} and .txt")


def profile_report(path: Path, top: int = 40) -> str:
    """Own time grouped by package, then the top functions by own and cumulative time."""
    from .diagnose import package_of

    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9
    groups: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in raw.items():
        key = package_of(filename)
        groups[key] = groups.get(key, 0.0) + tottime
    out = io.StringIO()
    out.write(f"profiled own time: {total:.3f} s\n\nby package:\n")
    for key, seconds in sorted(groups.items(), key=lambda kv: -kv[1])[:25]:
        out.write(f"  {seconds / total * 100:5.1f}%  {seconds:8.3f} s  {key}\n")
    stats.stream = out  # type: ignore[attr-defined]
    out.write("\ntop functions by own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("\ntop functions by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


class MemorySampler:
    """VmRSS every ``interval`` s and PSS every 10th sample of ``pid``, in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.rss: list[tuple[float, float]] = []
        self.pss: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        rollup = Path(f"/proc/{self.pid}/smaps_rollup")
        k = 0
        while not self._stop.is_set():
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.rss.append((time.time(), int(line.split()[1]) / 1024))
                if k % 10 == 0:
                    for line in rollup.read_text().splitlines():
                        if line.startswith("Pss:"):
                            self.pss.append((time.time(), int(line.split()[1]) / 1024))
            except OSError:
                return
            k += 1
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        return {
            "samples": len(self.rss),
            "rss_peak_mib": max(v for _, v in self.rss) if self.rss else None,
            "pss_peak_mib": max(v for _, v in self.pss) if self.pss else None,
        }


# -- images without builds ----------------------------------------------------------


def fast_commits(repo: GitRepo, count: int, label: str) -> list[str]:
    """``count`` new commits on ``main`` in one ``git fast-import`` (each an empty change
    with its own message, so its own SHA), oldest first."""
    head = git("rev-parse", "refs/heads/main", cwd=repo.path)
    stamp = int(time.time())
    parts = []
    for i in range(count):
        message = f"{label} {i} {uuid.uuid4().hex}\n".encode()
        parts.append(
            b"commit refs/heads/main\n"
            + f"committer Bench <bench@example.org> {stamp} +0000\n".encode()
            + f"data {len(message)}\n".encode()
            + message
            + (f"from {head}\n".encode() if i == 0 else b"")
            + b"\n"
        )
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=repo.path,
        input=b"".join(parts),
        check=True,
        capture_output=True,
    )
    shas = git("rev-list", "--reverse", f"{head}..refs/heads/main", cwd=repo.path).split()
    # keep the work tree in step with the branch (GitRepo.commit works on it)
    git("reset", "-q", "--hard", "refs/heads/main", cwd=repo.path)
    assert len(shas) == count, (len(shas), count)
    return shas


def tag_manifest(registry: Registry, image: str, tags: list[str]) -> None:
    """Put ``image``'s manifest under every tag of ``tags`` in the same registry
    repository: these images exist (same layers) without being built."""
    name, _, tag = image.partition("/")[2].rpartition(":")
    base = f"{registry.url}/v2/{name}/manifests"
    with httpx.Client(timeout=30) as client:
        got = client.get(f"{base}/{tag}", headers={"Accept": MANIFEST_ACCEPT})
        got.raise_for_status()
        manifest, media_type = got.content, got.headers["content-type"]

    def put(chunk: list[str]) -> None:
        with httpx.Client(timeout=30) as client:
            for t in chunk:
                r = client.put(
                    f"{base}/{t}", content=manifest, headers={"Content-Type": media_type}
                )
                r.raise_for_status()

    workers = 8
    chunks = [tags[i::workers] for i in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, chunks))


# -- 1. webhooks --------------------------------------------------------------------


def push_payload(template: dict[str, Any], url: str, before: str, sha: str) -> str:
    """The GitHub fixture rewritten for the local repository and a real commit."""
    data = copy.deepcopy(template)
    data["ref"] = "refs/heads/main"
    data["before"], data["after"] = before, sha
    repository = data["repository"]
    for name in ("clone_url", "html_url", "ssh_url", "git_url", "url"):
        repository[name] = url
    repository["default_branch"] = "main"
    repository["master_branch"] = "main"
    data["head_commit"]["id"] = sha
    data["commits"][-1]["id"] = sha
    data["compare"] = f"{url}/compare/{before[:12]}...{sha[:12]}"
    return json.dumps(data, indent=2)  # GitHub sends it pretty-printed, too


def delivery_plan(
    template: dict[str, Any], url: str, shas: list[str], warmup: int, n: int, seed: int
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """``warmup`` fresh deliveries, then ``n`` mixed as MIX says: fresh (new id, next
    commit), redelivery (an earlier delivery's id and body, byte for byte), same commit
    (an earlier commit, a new id). Earlier = at least 64 deliveries back, so the
    original has been answered (8 connections at most are in flight)."""
    import random

    rng = random.Random(seed)
    commits = iter(shas)
    bodies: dict[str, str] = {}
    plan: list[tuple[str, str]] = []
    counts = {"fresh": 0, "redelivery": 0, "same_commit": 0}
    previous = shas[0]

    def fresh() -> tuple[str, str]:
        nonlocal previous
        sha = next(commits)
        body = push_payload(template, url, previous, sha)
        previous = sha
        bodies[sha] = body
        return str(uuid.uuid4()), body

    for _ in range(warmup):
        plan.append(fresh())
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        j = warmup + i - 64
        if kind != "fresh" and j < 1:
            kind = "fresh"
        if kind == "fresh":
            plan.append(fresh())
        elif kind == "redelivery":
            plan.append(plan[rng.randrange(max(0, j - 200), j)])
        else:
            _, body = plan[rng.randrange(max(0, j - 200), j)]
            plan.append((str(uuid.uuid4()), body))
        counts[kind] += 1
    return plan, counts


def bench_webhooks(
    workdir: Path, registry: Registry, git_server: GitServer, bare: Bare, *, n: int
) -> dict[str, Any]:
    template = json.loads(PUSH_FIXTURE.read_text())
    repo = git_server.create_repo(
        "webhooks", {"Dockerfile": dockerfile("COPY . /srv/repo/"), "token.txt": "webhooks\n"}
    )
    connections = 8
    warmup = 50
    # closed loop (as fast as the server answers), then open loops of 4 s at 250/s
    # (half the goal) and 5 s at 500/s (the goal); name -> (deliveries, rate or 0)
    phases = {"closed": (n, 0.0), "open250": (1000, 250.0), "open500": (2500, 500.0)}
    webhook_config = {
        "repos": [{"url": repo.url}],
        "webhooks": {"github_secret": WEBHOOK_SECRET},
        "limits": {"max_concurrent_builds": 1},
    }
    config_path, _ = write_config(workdir, registry, webhook_config)
    settings = load_settings(config_path)
    url = repo_spec(repo.url, None).url
    # one real image, built by repo2docker; every other commit's image is the same
    # manifest under the commit's tag, so that builds end "in the registry already"
    first_sha = git("rev-parse", "HEAD", cwd=repo.path)
    base_image = image_name_for(settings.image_prefix, url, first_sha)
    say(f"webhooks: building {base_image} with bare repo2docker")
    bare.run(config_path, base_image, repo.url, first_sha)
    assert registry_has(registry, base_image), base_image
    plans: dict[str, Any] = {}
    all_shas: list[str] = []
    for phase, (count, _) in phases.items():
        needed = warmup + int(count * MIX["fresh"] * 1.3) + 50
        shas = fast_commits(repo, needed, f"webhooks {phase}")
        all_shas += shas
        plan, mix = delivery_plan(template, url, shas, warmup, count, seed=len(all_shas))
        path = workdir / f"deliveries-{phase}.json"
        path.write_text(json.dumps({"warmup": warmup, "deliveries": plan}))
        plans[phase] = {"file": path, "mix": mix}
    t0 = time.monotonic()
    tag_manifest(registry, base_image, all_shas)
    say(f"webhooks: {len(all_shas)} commits, their images tagged in {time.monotonic() - t0:.1f}s")

    # a fresh port now: the one picked above may have become a client's ephemeral port
    # during the minute of building and tagging
    config_path, port = write_config(workdir, registry, webhook_config)
    server = start_server(workdir, registry, config_path=config_path, port=port)
    results: dict[str, Any] = {
        "connections": connections,
        "mix": MIX,
        "payload_bytes": len(push_payload(template, url, first_sha, first_sha)),
    }
    try:
        time.sleep(2.0)
        results["idle"] = memory_of(server.pid)
        for phase, (count, rate) in phases.items():
            args = [
                "webhooks",
                "--port",
                str(server.port),
                "--deliveries",
                str(plans[phase]["file"]),
                "--secret-env",
                SECRET_ENV,
                "--connections",
                str(connections),
                "--max-seconds",
                "60",
            ]
            if rate:
                args += ["--rate", str(rate)]
            say(f"webhooks, {phase} loop: {warmup} warm-up + {count} deliveries")
            load = os.getloadavg()
            cpu_before = cpu_seconds(server.pid)
            with profiled(server, f"webhooks-{phase}"):
                out = run_loadgen(args, timeout=180, server=server)
            cpu = cpu_seconds(server.pid) - cpu_before
            summary = latency_summary(out["latencies_ns"])
            summary.update(
                {
                    "mode": out["mode"],
                    "rate": out["rate"],
                    "sent": out["sent"],
                    "planned": out["planned"],
                    "span_s": out["span_s"],
                    "throughput_per_s": out["throughput_per_s"],
                    "service": latency_summary(out["service_ns"]),
                    "answers": out["answers"],
                    "distinct_build_ids": out["distinct_build_ids"],
                    "planned_mix": plans[phase]["mix"],
                    "server_cpu_us_per_delivery": cpu / (out["sent"] + warmup) * 1e6,
                    "loadavg": load,
                    "latencies_ns": out["latencies_ns"],
                }
            )
            results[phase] = summary
            say(
                f"webhooks, {phase} loop: {out['throughput_per_s']:.0f}/s, "
                f"median {summary['median_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms"
            )
            time.sleep(1.0)
        results["after"] = memory_of(server.pid)
        # let the queue drain (builds end at the registry check), bounded
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = builds_by_state(config_path)
            if not states.get("queued") and not states.get("running"):
                break
            time.sleep(0.5)
        results["builds_by_state"] = builds_by_state(config_path)
        results["after_drain"] = memory_of(server.pid)
        results["deliveries_stored"] = state_rows(config_path, "SELECT COUNT(*) FROM deliveries")[
            0
        ][0]
        results["builds_found_in_registry"] = state_rows(
            config_path,
            "SELECT COUNT(*) FROM build_logs WHERE message LIKE '%in the registry already%'",
        )[0][0]
    finally:
        server.stop()
    return results


# -- 2. stream cache hits -------------------------------------------------------------


def stream_path(url: str, ref: str) -> str:
    return f"/build/git/{quote(url, safe='')}/{quote(ref, safe='')}?build_only=true"


def bench_stream_cache_hits(
    workdir: Path,
    registry: Registry,
    git_server: GitServer,
    bare: Bare,
    *,
    bursts: int,
    concurrency: int = 50,
) -> dict[str, Any]:
    repo = git_server.create_repo(
        "stream-cache",
        {"Dockerfile": dockerfile("COPY . /srv/repo/"), "token.txt": uuid.uuid4().hex + "\n"},
    )
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    config_path, _ = write_config(workdir, registry)
    settings = load_settings(config_path)
    url = repo_spec(repo.url, sha).url
    image = image_name_for(settings.image_prefix, url, sha)
    say(f"stream cache hits: building {image} with bare repo2docker")
    bare.run(config_path, image, repo.url, sha)
    assert registry_has(registry, image), image
    config_path, port = write_config(workdir, registry)  # a fresh port, as above
    server = start_server(workdir, registry, config_path=config_path, port=port, nofile=4096)
    results: dict[str, Any] = {"image": image, "concurrency": concurrency, "bursts": bursts}
    try:
        time.sleep(2.0)
        results["idle"] = memory_of(server.pid)
        cases = [
            ("sha", stream_path(repo.url, sha), []),
            ("branch", stream_path(repo.url, "main"), []),
            # the same burst against a plain JSON route with no token and no stream:
            # the floor set by connections, uvicorn, Starlette and the client
            ("floor_versions", "/versions", ["--plain"]),
        ]
        for case, path, extra in cases:
            say(f"stream cache hits, {case}: 1 warm-up + {bursts} bursts of {concurrency}")
            load = os.getloadavg()
            cpu_before = cpu_seconds(server.pid)
            with profiled(server, f"stream-cache-{case}"):
                out = run_loadgen(
                    [
                        "burst",
                        "--port",
                        str(server.port),
                        "--path",
                        path,
                        "--concurrency",
                        str(concurrency),
                        "--bursts",
                        str(bursts),
                        *extra,
                    ],
                    timeout=300,
                    server=server,
                )
            cpu = cpu_seconds(server.pid) - cpu_before
            measured = [r for r in out["rounds"] if not r["warmup"]]
            for r in out["rounds"]:
                if r["phases"] != ["ready"] or (not extra and r["images"] != [image]):
                    raise RuntimeError(f"stream cache hit, {case}: {r['phases']} {r['bad']}")
            per_burst = [latency_summary(r["ns"]) for r in measured]
            pooled = [v for r in measured for v in r["ns"]]
            results[case] = {
                "loadavg": load,
                "burst_medians_ms": [b["median_ms"] for b in per_burst],
                "burst_p99s_ms": [b["p99_ms"] for b in per_burst],
                "burst_max_ms": [b["max_ms"] for b in per_burst],
                "burst_wall_ms": [r["burst_wall_ns"] / 1e6 for r in measured],
                "median_of_burst_medians_ms": statistics.median(b["median_ms"] for b in per_burst),
                "median_of_burst_p99s_ms": statistics.median(b["p99_ms"] for b in per_burst),
                "pooled": latency_summary(pooled),
                "warmup_burst": latency_summary(out["rounds"][0]["ns"]),
                "server_cpu_us_per_request": cpu / (concurrency * len(out["rounds"])) * 1e6,
                "latencies_ns": pooled,
            }
            s = results[case]
            say(
                f"stream cache hits, {case}: median of burst medians "
                f"{s['median_of_burst_medians_ms']:.1f} ms, of burst p99s "
                f"{s['median_of_burst_p99s_ms']:.1f} ms"
            )
        results["after"] = memory_of(server.pid)
    finally:
        server.stop()
    return results


# -- 3. stream watchers -------------------------------------------------------------------


def bench_stream_watchers(
    workdir: Path, registry: Registry, git_server: GitServer, *, watchers: int = 500
) -> dict[str, Any]:
    token = uuid.uuid4().hex
    repo = git_server.create_repo(
        "watchers", {"Dockerfile": dockerfile(f"RUN echo {token}", "RUN sleep 5")}
    )
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    server = start_server(workdir, registry, nofile=watchers * 4 + 256)
    results: dict[str, Any] = {"watchers": watchers}
    try:
        time.sleep(2.0)
        results["idle"] = memory_of(server.pid)
        load = os.getloadavg()
        sampler = MemorySampler(server.pid)
        say(f"stream watchers: {watchers} clients of one build (RUN sleep 5)")
        with profiled(server, "stream-watchers"):
            out = run_loadgen(
                [
                    "watch",
                    "--port",
                    str(server.port),
                    "--path",
                    stream_path(repo.url, sha),
                    "--n",
                    str(watchers),
                ],
                timeout=400,
                server=server,
            )
        memory = sampler.stop()
        results["after"] = memory_of(server.pid)
        row = state_rows(
            server.config_path,
            "SELECT id, state, created_at, started_at, finished_at, image FROM builds "
            "WHERE sha = ? ORDER BY created_at",
            (sha,),
        )
        if len(row) != 1:
            raise RuntimeError(f"expected one build of {sha}, found {row}")
        _, state, created_at, started_at, finished_at, image = row[0]
        clients = out["clients"]
        ready = [c for c in clients if c["phase"] == "ready"]
        same_image = [c for c in ready if c["image"] == image]
        ends = sorted(c["wall_end"] for c in ready)
        results.update(
            {
                "loadavg": load,
                "build_state": state,
                "image": image,
                "ready": len(ready),
                "ready_same_image": len(same_image),
                "other_outcomes": sorted(
                    {f"{c['status']} {c['phase']}" for c in clients} - {"200 ready"}
                ),
                "client_errors": out["error_count"],
                "client_error_sample": out["errors"],
                "all_sent_after_s": out["last_sent_wall"] - out["first_sent_wall"],
                "last_sent_before_build_end_s": finished_at - out["last_sent_wall"],
                "build_s": finished_at - started_at,
                "queued_s": started_at - created_at,
                "end_to_first_ready_ms": (ends[0] - finished_at) * 1000 if ends else None,
                "end_to_median_ready_ms": (statistics.median(ends) - finished_at) * 1000
                if ends
                else None,
                "end_to_p99_ready_ms": (percentile(ends, 99) - finished_at) * 1000
                if ends
                else None,
                "end_to_last_ready_ms": (ends[-1] - finished_at) * 1000 if ends else None,
                # the event before ``ready`` (the build's last log line): when the
                # first and the last client read it, relative to the build's end
                "end_to_first_prev_event_ms": (
                    (min(c["wall_prev"] for c in ready if c.get("wall_prev")) - finished_at) * 1000
                    if any(c.get("wall_prev") for c in ready)
                    else None
                ),
                "end_to_last_prev_event_ms": (
                    (max(c["wall_prev"] for c in ready if c.get("wall_prev")) - finished_at) * 1000
                    if any(c.get("wall_prev") for c in ready)
                    else None
                ),
                "events_per_client_median": statistics.median(c["events"] for c in clients)
                if clients
                else None,
                "memory_samples": memory["samples"],
                "rss_peak_mib": memory["rss_peak_mib"],
                "pss_peak_mib": memory["pss_peak_mib"],
            }
        )
        say(
            f"stream watchers: {len(same_image)}/{watchers} ready with {image}; last "
            f"{results['end_to_last_ready_ms']:.0f} ms after the build ended; RSS peak "
            f"{memory['rss_peak_mib']:.1f} MiB (idle {results['idle']['VmRSS']:.1f})"
        )
    finally:
        server.stop()
    return results
