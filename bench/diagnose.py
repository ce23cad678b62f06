"""Where the time and the memory of the server go: profiles behind bench/README.md.

``.venv/bin/python -m bench.diagnose cpu [--n N]``
    The server (create_app + uvicorn with uvloop and httptools, as ``serve`` runs
    it) in this process under cProfile, which is switched on only while
    bench.client sends N cache-hit requests (SHA, then a known branch) from another
    process. The registry's and the ref resolver's caches are primed in memory, so
    no registry or git server is needed: this is exactly the hot path of a cache
    hit. Prints the profile's own time grouped by package and the top functions.
    cProfile makes every Python call slower, so read the shares, not the totals.

``.venv/bin/python -m bench.diagnose deliveries``
    The time of ``Store.remember_delivery`` (one per webhook delivery) as the
    deliveries table fills up to and past ``webhooks.deliveries_remembered``.

``.venv/bin/python -m bench.diagnose memory``
    Imports what ``binderhub-service serve`` imports, step by step, in a fresh
    process, printing VmRSS after each step; then starts the service as ``serve``
    does (without listening) and reports RSS and the largest Python allocations
    (tracemalloc, by package).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "git://127.0.0.1:9/diagnose"


def package_of(filename: str) -> str:
    """A short owner for a code location: the package, or the stdlib module."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return "site-packages/" + parts[parts.index("site-packages") + 1].removesuffix(".py")
    try:
        rel = path.resolve().relative_to(ROOT)
        return f"project/{rel.parts[0]}"
    except ValueError:
        pass
    if "lib" in parts:
        after = parts[parts.index("lib") + 2 :] if len(parts) > parts.index("lib") + 2 else parts
        return "stdlib/" + after[0].removesuffix(".py")
    return filename


def cpu(n: int, *, profiled: bool = True, log_level: str = "info") -> dict[str, float]:
    import uvicorn

    from bench.common import API_TOKEN, token_settings
    from jobs.naming import image_name_for
    from jobs.settings import Settings, load_settings
    from jobs.sources.specs import ResolvedRef, repo_spec
    from testkit.components import free_port
    from webhook.app import create_app

    workdir = Path(tempfile.mkdtemp(prefix="bhs-diagnose-"))
    port = free_port()
    values: dict[str, object] = {
        "listen": f"127.0.0.1:{port}",
        "image_prefix": "127.0.0.1:9/bench-",
        "state_path": str(workdir / "builds.sqlite"),
        "log_level": log_level,
    }
    if "auth" in Settings.model_fields:
        values["auth"] = token_settings()
    settings = load_settings(None, **values)
    # Log as `serve` does (webhook.cli.serve), to a file as in bench.run: fd 2 is
    # redirected for the duration.
    log_kwargs: dict[str, Any] = {}
    try:
        from webhook.logs import configure_logging
    except ImportError:  # older trees: serve used logging.basicConfig
        logging.basicConfig(level=settings.log_level.upper())
    else:
        log_format = getattr(settings, "log_format", "text")
        log_kwargs["log_config"] = configure_logging(settings.log_level, log_format)
    log_file = open(workdir / "server.log", "wb")  # noqa: SIM115
    saved_stderr = os.dup(2)
    os.dup2(log_file.fileno(), 2)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        **log_kwargs,
    )
    server = uvicorn.Server(config)
    profile = cProfile.Profile()
    span: dict[str, float] = {}

    async def drive() -> None:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
            await asyncio.sleep(0.01)
        service = app.state.service
        url = repo_spec(REPO, SHA).url
        service.registry.remember(image_name_for(settings.image_prefix, url, SHA))
        service.resolver.remember(url, "main", ResolvedRef(SHA, "branch", "refs/heads/main"))
        for ref in (SHA, "main"):
            command = [sys.executable, "-m", "bench.client", "--port", str(port)]
            command += ["--build", REPO, ref, "--n", str(n), "--warmup", "50"]
            if profiled:
                profile.enable()
            proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "BENCH_API_TOKEN": API_TOKEN},
            )
            out, _ = await proc.communicate()
            if profiled:
                profile.disable()
            if proc.returncode != 0:
                raise RuntimeError("bench.client failed")
            result = json.loads(out)
            lat = sorted(result["latencies_ns"])
            span[ref] = lat[len(lat) // 2] / 1e6
        server.should_exit = True

    async def main() -> None:
        driver = asyncio.create_task(drive())
        await server.serve()
        await driver

    import uvloop

    try:
        uvloop.run(main())  # what loop="uvloop" gives `serve`
    finally:
        os.dup2(saved_stderr, 2)
        log_file.close()
    lines = (workdir / "server.log").read_bytes().count(b"\n")
    print(f"the server wrote {lines} log lines")
    shutil.rmtree(workdir, ignore_errors=True)

    if not profiled:
        return span
    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_package[package_of(filename)] += tottime
        total += tottime
    print(f"median latency under cProfile: SHA {span[SHA]:.3f} ms, branch {span['main']:.3f} ms")
    print(f"profiled time (own time of all functions): {total:.3f} s for {2 * (n + 50)} requests")
    print(f"  = {total / (2 * (n + 50)) * 1e6:.0f} µs per request under cProfile\n")
    print("own time by package:")
    for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {seconds / total * 100:5.1f}%  {package}")
    print("\ntop functions by own time:")
    stats.sort_stats("tottime").print_stats(25)
    print("request handler, cumulative:")
    stats.sort_stats("cumulative").print_stats(
        r"create_build|request|resolve|has_image|require|logs.py|logging/__init__.py:(\d+)\((_log|handle|emit|info)\)"
    )
    out = ROOT / "bench" / "results" / "diagnose-cpu.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(out))
    print(f"profile saved to {out.relative_to(ROOT)} (python -m pstats)")
    return span


MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys, os, json, importlib, time
    def rss():
        for line in open('/proc/self/status'):
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    steps = json.loads(sys.argv[1])
    before = rss()
    print(f"{'python itself':<58} {before:7.1f} MiB")
    import tracemalloc
    if os.environ.get('TRACE'):
        tracemalloc.start(1)
    for label, code in steps:
        exec(code)
        now = rss()
        print(f"{label:<58} {now:7.1f} MiB  (+{now - before:.1f})")
        before = now
    if os.environ.get('TRACE'):
        snap = tracemalloc.take_snapshot()
        total = sum(s.size for s in snap.statistics('filename'))
        print(f"\\nPython heap (tracemalloc) after all steps: {total / 2**20:.1f} MiB; by package:")
        groups = {}
        for stat in snap.statistics('filename'):
            name = stat.traceback[0].filename
            if 'site-packages/' in name:
                key = name.split('site-packages/')[1].split('/')[0]
            elif '/work/main/' in name:
                key = 'project/' + name.split('/work/main/')[1].split('/')[0]
            elif '/lib/python3' in name:
                key = 'stdlib'
            else:
                key = name
            groups[key] = groups.get(key, 0) + stat.size
        for key, size in sorted(groups.items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {size / 2**20:6.2f} MiB  {key}")
    """
)

MEMORY_STEPS = [
    ("import yaml, pydantic, pydantic_settings", "import yaml, pydantic, pydantic_settings"),
    ("import jobs.settings (+ build the Settings model)", "import jobs.settings"),
    ("import httpx", "import httpx"),
    (
        "import starlette (applications, routing, responses)",
        "import starlette.applications, starlette.routing, starlette.responses",
    ),
    (
        "import uvicorn, uvloop, httptools (+ protocols)",
        "import uvicorn, uvloop, httptools, uvicorn.protocols.http.httptools_impl",
    ),
    ("import the rest of jobs (factory, service, store...)", "import jobs.factory"),
    ("import webhook.app (routes, auth, hooks...)", "import webhook.app, webhook.cli"),
    (
        "make_service(): httpx.AsyncClient (SSL context), SQLite",
        "from jobs.settings import load_settings\n"
        "from jobs.factory import make_service\n"
        "import tempfile\n"
        "s = load_settings(None, state_path=tempfile.mkdtemp() + '/b.sqlite')\n"
        "svc = make_service(s)",
    ),
    (
        "a second httpx.AsyncClient() (cost of one SSL context)",
        "import httpx\nc2 = httpx.AsyncClient()",
    ),
]


def memory() -> int:
    steps = [list(step) for step in MEMORY_STEPS]
    print("RSS of a fresh interpreter importing what `serve` imports, step by step:\n")
    subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, json.dumps(steps)], cwd=ROOT, check=True)
    print("\nthe same with tracemalloc on (RSS grows by tracemalloc's own bookkeeping):")
    subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, json.dumps(steps)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "TRACE": "1"},
    )
    print("\nslowest imports (python -X importtime -c 'import webhook.app, uvicorn'), cumulative:")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import webhook.app, webhook.cli, uvicorn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        fields = line[len("import time:") :].split("|")
        cumulative_us, name = int(fields[1]), fields[2]
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:  # top-level imports and their direct children
            rows.append((cumulative_us, name.strip()))
    for cumulative_us, name in sorted(rows, reverse=True)[:15]:
        print(f"  {cumulative_us / 1000:7.1f} ms  {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.diagnose")
    parser.add_argument("what", choices=("cpu", "memory", "access-log", "deliveries"))
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.what == "cpu":
        cpu(args.n)
        return 0
    if args.what == "access-log":
        return access_log(args.n)
    if args.what == "deliveries":
        deliveries()
        return deliveries(checkpoints=False)
    return memory()


def deliveries(keep: int = 10_000, batch: int = 500, *, checkpoints: bool = True) -> int:
    """The cost of ``Store.remember_delivery`` (what every accepted webhook delivery
    commits) as the deliveries table fills up: time per call for each batch, in a
    temporary state file (WAL, synchronous=NORMAL, as the server), and the slowest
    calls (WAL checkpoints)."""
    from jobs.store import SqliteStore

    decision = json.dumps({"outcome": "accepted", "builds": [{"id": "x" * 32}] * 1})
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "builds.sqlite")
        if not checkpoints:  # diagnosis only: are the slow calls WAL checkpoints?
            store._db.execute("PRAGMA wal_autocheckpoint=0")
        stored = 0
        print(
            f"keep = {keep}, WAL auto-checkpoint {'on (as the server)' if checkpoints else 'OFF'}; "
            "µs per remember_delivery, by rows already stored"
        )
        print(f"{'stored':>8} {'median':>8} {'p99':>8} {'max':>8}")
        while stored < keep * 2:
            times = []
            for _ in range(batch):
                t0 = time.perf_counter_ns()
                store.remember_delivery("github", uuid.uuid4().hex, time.time(), decision, keep)
                times.append((time.perf_counter_ns() - t0) / 1000)
            if stored in (0, 1000, 2500, 5000, 7500, 9500, 12000, 15000, 19500):
                times.sort()
                print(
                    f"{stored:>8} {statistics.median(times):8.0f} "
                    f"{times[int(len(times) * 0.99)]:8.0f} {times[-1]:8.0f}"
                )
            stored += batch
        store.close()
    return 0


def access_log(n: int, rounds: int = 3) -> int:
    """Cache-hit medians with log_level info (one access line per request) and
    warning (no access line), alternating, no profiler: the cost of the access log."""
    medians: dict[str, list[float]] = {"info": [], "warning": []}
    for _ in range(rounds):
        for level in ("info", "warning"):
            span = cpu(n, profiled=False, log_level=level)
            medians[level].append(span[SHA])
            print(f"log_level {level:<8} SHA cache hit median {span[SHA]:.3f} ms")
    for level, values in medians.items():
        print(f"log_level {level:<8} median of {rounds} rounds: {statistics.median(values):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
