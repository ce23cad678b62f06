"""The quota benchmark of bench.run (issue 16): one user's burst of distinct commits.

One ``binderhub-service serve`` with ``quotas.per_user.builds_per_window: Q`` (and
nothing else changed); one user (the bench's API token) sends N ``POST /api/v1/builds``
for N distinct commits of one repository (full 40-hex SHAs, so no ``git ls-remote``:
each request costs the service a registry lookup and the quota check) over K keep-alive
connections at once, each connection sending its next request as soon as the previous
one was answered. The goal: at most Q builds created, every other answer a 429 with
``Retry-After``, 429s answered within 20 ms at the 99th percentile, no 5xx.

The client is this module run as another process (``python -m bench.quota_burst``,
asyncio + raw sockets from bench.loadgen), timing each request from its write to the
end of its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from testkit.components import GitServer, Registry, dockerfile

from .common import API_TOKEN, ROOT, latency_summary, percentile, say, start_server
from .loadgen import connect, read_body, read_head

GOAL_P99_MS = 20.0


# -- the client (another process) -----------------------------------------------------


async def client(port: int, repo: str, shas: list[str], connections: int) -> dict[str, Any]:
    token = os.environ["BENCH_API_TOKEN"]
    requests = []
    for sha in shas:
        body = json.dumps({"repo": repo, "ref": sha}).encode()
        requests.append(
            (
                "POST /api/v1/builds HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    answers: list[tuple[int, int, bool]] = []  # status, ns, has Retry-After
    next_index = 0
    sockets = [await connect(port) for _ in range(connections)]
    started = time.perf_counter_ns()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index
        while next_index < len(requests):
            i = next_index
            next_index += 1
            t0 = time.perf_counter_ns()
            writer.write(requests[i])
            status, headers = await read_head(reader)
            await read_body(reader, headers)
            answers.append((status, time.perf_counter_ns() - t0, "retry-after" in headers))

    await asyncio.gather(*(worker(r, w) for r, w in sockets))
    span = time.perf_counter_ns() - started
    for _, writer in sockets:
        writer.close()
    return {"span_ns": span, "answers": answers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.quota_burst")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--shas", required=True, help="a JSON file: a list of commit SHAs")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    shas = json.loads(Path(args.shas).read_text(encoding="utf-8"))
    result = asyncio.run(client(args.port, args.repo, shas, args.connections))
    json.dump(result, sys.stdout)
    return 0


# -- the runner's side ----------------------------------------------------------------


def bench_quota_burst(
    workdir: Path,
    registry: Registry,
    git_server: GitServer,
    *,
    requests: int = 1000,
    quota: int = 10,
    connections: int = 8,
) -> dict[str, Any]:
    """Start a server with the quota, send the burst, count what it answered and made."""
    repo = git_server.create_repo("quota-burst", {"Dockerfile": dockerfile("RUN true")})
    # distinct commits nobody has built: SHAs the resolver takes as given (the builds
    # that are let through fail at checkout, which costs the burst nothing)
    shas = [secrets.token_hex(20) for _ in range(requests)]
    shas_file = workdir / "shas.json"
    workdir.mkdir(parents=True, exist_ok=True)
    shas_file.write_text(json.dumps(shas))
    extra = {"quotas": {"per_user": {"builds_per_window": quota, "window": 3600}}}
    server = start_server(workdir, registry, extra=extra)
    try:
        time.sleep(1.0)
        say(f"quota burst: {requests} requests for distinct commits over {connections} connections")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.quota_burst",
                *("--port", str(server.port), "--repo", repo.url, "--shas", str(shas_file)),
                *("--connections", str(connections)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "BENCH_API_TOKEN": API_TOKEN},
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.quota_burst failed:\n{done.stderr[-4000:]}")
        out = json.loads(done.stdout)
    finally:
        server.stop()
    with sqlite3.connect(workdir / "state" / "builds.sqlite") as db:
        created = int(db.execute("SELECT COUNT(*) FROM builds").fetchone()[0])
    statuses: dict[str, int] = {}
    for status, _, _ in out["answers"]:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    refused = [ns for status, ns, _ in out["answers"] if status == 429]
    refused_ms = [ns / 1e6 for ns in refused]
    result = {
        "requests": requests,
        "quota": quota,
        "connections": connections,
        "statuses": statuses,
        "builds_created": created,
        "server_errors": sum(1 for status, _, _ in out["answers"] if status >= 500),
        "refusals_without_retry_after": sum(
            1 for status, _, retry in out["answers"] if status == 429 and not retry
        ),
        "refused": latency_summary(refused) if refused else None,
        "all": latency_summary([ns for _, ns, _ in out["answers"]]),
        "span_s": out["span_ns"] / 1e9,
        "answers_in_order": out["answers"],
        "goal_p99_ms": GOAL_P99_MS,
    }
    p99 = percentile(refused_ms, 99) if refused_ms else float("nan")
    ok = created <= quota and result["server_errors"] == 0 and p99 <= GOAL_P99_MS
    result["met"] = ok
    say(
        f"quota burst: {statuses}, {created} builds created (quota {quota}), 429 median "
        f"{statistics.median(refused_ms) if refused_ms else float('nan'):.2f} ms, p99 "
        f"{p99:.2f} ms: {'met' if ok else 'NOT met'}"
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
