"""What the benchmarks share: the goals and BinderHub's figures, statistics, the
service as a process (``start_server``) and a bare repo2docker run. Imported by every
benchmark module; imports none of them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.registry.client import MANIFEST_ACCEPT
from jobs.repo2docker.command import CONTENT_PROVIDER_CONFIG, repo2docker_args
from jobs.settings import Settings, load_settings
from jobs.sources.refs import git_environment
from testkit.components import (
    Registry,
    dockerfile,
    free_port,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
BENCHMARKS = ("cache_hit", "pipeline", "memory")
# bench/features.py; run only when named with --only (each starts its own server)
FEATURE_BENCHMARKS = (
    "webhooks",
    "stream_cache_hits",
    "stream_watchers",
    "quota_burst",
    "rebuild_cache",  # bench/rebuild_cache.py (issue 15)
    "record_cache_hit",  # bench/record_cache_hit.py (issue 25)
)

GOALS = {
    "cache_hit_sha_median_ms": 1.0,
    "cache_hit_branch_median_ms": 3.0,
    "pipeline_overhead_median_s": 0.1,
    "idle_rss_mib": 60.0,
    "webhook_p99_ms": 20.0,
    "webhook_throughput_per_s": 500.0,  # at least
    "stream_cache_hit_median_ms": 20.0,
    "quota_refusal_p99_ms": 20.0,
    "record_cache_hit_median_ms": 2.0,
}
HIGHER_IS_BETTER = {"webhook_throughput_per_s"}
BINDERHUB = {
    "cache_hit_sha_median_ms": 5.5,
    "cache_hit_sha_p99_ms": 10.6,
    "cache_hit_branch_median_ms": 57.0,
    "pipeline_overhead_median_s": 0.94,
    "idle_rss_mib": 126.0,
    "stream_cache_hit_median_ms": 198.0,
    "stream_cache_hit_p99_ms": 300.0,
}

POLL_INTERVAL_S = 0.005
# A fresh API token per run, handed to bench.client in its environment.
API_TOKEN = secrets.token_hex(16)
AUTH_HEADERS = {"Authorization": f"Bearer {API_TOKEN}"}
# Same Dockerfile shape on both sides of the pipeline benchmark: a COPY of the
# repository, whose token.txt changes with every commit (so the layer is new).
PIPELINE_DOCKERFILE = dockerfile("COPY . /srv/repo/")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics -------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median_ci95(values: list[float]) -> tuple[float, float]:
    """A distribution-free ~95% confidence interval of the median (order statistics).

    The k-th smallest and k-th largest values, with k the largest rank such that
    P(Binomial(n, 1/2) < k) <= 2.5%; for n < 6 no such k exists and the range is
    returned."""
    ordered = sorted(values)
    n = len(ordered)
    k, cumulative = 0, 0.0
    while True:
        nxt = cumulative + math.comb(n, k) / 2**n
        if nxt > 0.025:
            break
        cumulative, k = nxt, k + 1
    k = max(k, 1)
    return ordered[k - 1], ordered[n - k]


def latency_summary(ns: list[int]) -> dict[str, Any]:
    ms = [v / 1e6 for v in ns]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "mean_ms": statistics.fmean(ms),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


# -- /proc ------------------------------------------------------------------


def memory_of(pid: int) -> dict[str, Any]:
    """VmRSS & co. from /proc/PID/status, PSS from /proc/PID/smaps_rollup, in MiB."""
    out: dict[str, Any] = {}
    wanted = {"VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            number = int(value.split()[0])
            out[key] = number if key == "Threads" else number / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Pss", "Pss_Anon", "Pss_File"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_info() -> dict[str, Any]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    os_name = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.partition("=")[2].strip('"')
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.partition(":")[2].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--", "jobs", "webhook", "hub"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": commit,
        "service_code_dirty": dirty,
        "loadavg_at_start": os.getloadavg(),
    }


# -- the components -----------------------------------------------------------


# bench.run --profile: servers run under bench.profiled_serve, profiles written here
PROFILE: dict[str, Path | None] = {"dir": None}
DATABASE: dict[str, Any] = {"server": None}
"""``server``: a ``testkit.postgres.Postgres`` whose new databases keep the state of the
servers started from now on (``bench.run --database postgresql``); None: SQLite files."""


def state_rows(config_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of a read-only query (``?`` placeholders) of a server's state: its SQLite
    file, or its PostgreSQL database."""
    settings = load_settings(config_path)
    if settings.database.url is not None:
        import psycopg

        with psycopg.connect(settings.database.url.get_secret_value()) as conn:
            query = sql.replace("%", "%%").replace("?", "%s")
            return list(conn.execute(query, params).fetchall())
    with sqlite3.connect(f"file:{settings.state_path}?mode=ro", uri=True) as db:
        return list(db.execute(sql, params).fetchall())


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    config_path: Path
    log_path: Path
    startup_s: float
    profile_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def token_settings() -> dict[str, Any]:
    """The ``auth`` section for the bench's API token, with both scopes, as a real
    client's token would have."""
    return {
        "tokens": [
            {
                "name": "bench",
                "sha256": hashlib.sha256(API_TOKEN.encode()).hexdigest(),
                "scopes": ["builds:read", "builds:write"],
            }
        ]
    }


def write_config(
    workdir: Path, registry: Registry, extra: dict[str, Any] | None = None
) -> tuple[Path, int]:
    """The server's config file (and the port it will listen on)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "image_prefix": f"{registry.host}/bench-",
        "state_path": str(workdir / "state" / "builds.sqlite"),
        # everything else is the default; in particular ref_cache_seconds (30 s) and
        # registry.cache_seconds (3600 s) and log_level (info)
    }
    if DATABASE["server"] is not None:
        config["database"] = {"url": DATABASE["server"].create_database()}
    if "auth" in Settings.model_fields:
        # the API asks for a token: one with both scopes, as a real client would send
        config["auth"] = token_settings()
    config.update(extra or {})
    config_path = workdir / "service.yaml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    return config_path, port


def start_server(
    workdir: Path,
    registry: Registry,
    *,
    extra: dict[str, Any] | None = None,
    config_path: Path | None = None,
    port: int | None = None,
    nofile: int | None = None,
) -> Server:
    """``binderhub-service serve`` with the config of ``write_config`` (written here
    unless given); ``nofile`` raises its file-descriptor limit before exec."""
    if config_path is None or port is None:
        config_path, port = write_config(workdir, registry, extra)
    log_path = workdir / "service.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERHUB_SERVICE_")}
    command = [str(Path(sys.executable).parent / "binderhub-service"), "serve"]
    profile_path = None
    if PROFILE["dir"] is not None:
        profile_path = workdir / "server.prof"
        command = [sys.executable, "-m", "bench.profiled_serve", str(profile_path), "serve"]
        env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--config", str(config_path)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if nofile is None else (lambda: raise_fd_limit(nofile)),
        )

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited; see {log_path}:\n{log_path.read_text()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return bool(r.status == 200)

    wait_until(healthy, timeout=60, interval=0.01)
    startup_s = time.perf_counter() - started
    return Server(process, port, config_path, log_path, startup_s, profile_path)


def raise_fd_limit(wanted: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to ``wanted`` (at most the hard limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@dataclass
class Bare:
    """Runs repo2docker the way the local executor does (same flags, same environment)."""

    workdir: Path
    config_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.workdir / "repo2docker_config.py"
        self.config_file.write_text(CONTENT_PROVIDER_CONFIG, encoding="utf-8")

    def run(self, server_config: Path, image: str, repo: str, sha: str) -> tuple[float, float]:
        """Build and push; returns the wall-clock start and end of the repo2docker process."""
        settings = load_settings(server_config)
        command = [
            sys.executable,
            "-m",
            "repo2docker",
            *repo2docker_args(
                settings.repo2docker,
                image=image,
                repo=repo,
                sha=sha,
                config_file=str(self.config_file),
            ),
        ]
        env = {**os.environ, **git_environment(settings.allow_file_urls)}
        log_path = self.workdir / f"repo2docker-{sha[:12]}.log"
        # Like the local executor, read repo2docker's output from a pipe line by line
        # (the service parses each line and stores it; here it goes to a file).
        with log_path.open("wb") as log:
            started = time.time()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
            returncode = process.wait()
            ended = time.time()
        if returncode != 0:
            raise RuntimeError(f"bare repo2docker failed ({returncode}); see {log_path}")
        return started, ended


def registry_has(registry: Registry, image: str) -> bool:
    name, _, tag = image.partition("/")[2].rpartition(":")
    request = urllib.request.Request(  # noqa: S310
        f"{registry.url}/v2/{name}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310
            return bool(r.status == 200)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def run_client(port: int, args: list[str], n: int, warmup: int) -> dict[str, Any]:
    """``bench.client`` against the server on ``port`` with the bench's API token: its
    JSON (latencies in ns; see bench/client.py). Raises RuntimeError if it failed (an
    unexpected status, outcome or body)."""
    command = [
        sys.executable,
        "-m",
        "bench.client",
        "--port",
        str(port),
        "--n",
        str(n),
        "--warmup",
        str(warmup),
        *args,
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_API_TOKEN": API_TOKEN},
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.client {args} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
