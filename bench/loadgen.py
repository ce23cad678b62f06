"""Concurrent load clients (asyncio + raw sockets), run by bench.run as a separate process.

Three modes, each printing one JSON object on standard output and stopping by itself
(a fixed number of requests and a wall-clock cap):

``webhooks --port P --deliveries FILE --secret-env VAR [--connections K] [--rate R]``
    Sends the signed GitHub push deliveries of FILE (JSON: ``{"warmup": n,
    "deliveries": [[delivery_id, body], ...]}``; the runner signs nothing, this process
    signs each body with the secret in ``$VAR`` *before* the timed loop) over K
    keep-alive HTTP/1.1 connections (``TCP_NODELAY``), each sending its next delivery as
    soon as the previous answer was read (closed loop), or, with ``--rate``, at the
    scheduled times ``t0 + i / R`` (open loop: the latency counts from the scheduled
    time, so a stalled server cannot hide its backlog — no coordinated omission).
``burst --port P --path PATH --concurrency C --bursts B [--warmup-bursts W] [--plain]``
    B bursts of C BinderHub stream requests at once: C connections are opened, then
    every request is written and each is timed from its write to the ``ready`` (or
    ``failed``) event; with ``--plain``, to the end of a plain answer (``/versions``:
    the floor of the same burst without a stream).
``watch --port P --path PATH --n N``
    N stream clients of the same build: all connect and ask, then each reads its
    stream to the end; the wall-clock time of each ``ready`` is reported.

Every stream request carries ``Accept: text/event-stream`` and
``Authorization: Bearer $BENCH_API_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import resource
import socket
import sys
import time
from pathlib import Path
from typing import Any

perf = time.perf_counter_ns


# -- HTTP/1.1 on raw asyncio streams ------------------------------------------


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    parts = []
    async for chunk in chunks(reader, headers):
        parts.append(chunk)
    return b"".join(parts)


async def chunks(reader: asyncio.StreamReader, headers: dict[str, str]) -> Any:
    """The body's pieces as they arrive (chunked transfer coding, or until EOF)."""
    if headers.get("transfer-encoding", "").lower() != "chunked":
        while data := await reader.read(65536):
            yield data
        return
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


async def read_events(reader: asyncio.StreamReader) -> tuple[int, list[dict[str, Any]]]:
    """A server-sent event stream up to its ``ready`` or ``failed`` event (or its end)."""
    status, headers = await read_head(reader)
    events: list[dict[str, Any]] = []
    if status != 200:
        events.append({"phase": "http-error", "status": status})
        return status, events
    buffer = b""
    async for data in chunks(reader, headers):
        buffer += data
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    event["_wall"] = time.time()  # when this client read it
                    events.append(event)
                    if event.get("phase") in ("ready", "failed"):
                        return status, events
    return status, events


def stream_request(path: str) -> bytes:
    token = os.environ.get("BENCH_API_TOKEN", "")
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# -- webhooks -------------------------------------------------------------------


async def webhooks(args: argparse.Namespace) -> dict[str, Any]:
    spec = json.loads(Path(args.deliveries).read_text(encoding="utf-8"))  # noqa: ASYNC240
    secret = os.environ[args.secret_env].encode()
    warmup = int(spec["warmup"])
    requests = []
    for delivery_id, body in spec["deliveries"]:
        raw = body.encode()
        signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        requests.append(
            (
                "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
                "X-GitHub-Event: push\r\n"
                f"X-GitHub-Delivery: {delivery_id}\r\n"
                f"X-Hub-Signature-256: {signature}\r\n"
                f"Content-Length: {len(raw)}\r\n\r\n"
            ).encode()
            + raw
        )
    total = len(requests)
    latencies = [0] * total  # from write (closed loop) or the scheduled time (open loop)
    service = [0] * total  # from write to the whole answer read
    statuses = [0] * total
    bodies: list[bytes] = [b""] * total
    next_index = 0
    deadline = time.monotonic() + args.max_seconds
    interval_ns = int(1e9 / args.rate) if args.rate else 0

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> None:
        t0 = perf()
        writer.write(requests[i])
        status, headers = await read_head(reader)
        body = await read_body(reader, headers)
        t1 = perf()
        service[i] = t1 - t0
        statuses[i] = status
        bodies[i] = body
        return None

    # warm-up: one connection, one at a time, not timed into the results
    reader, writer = await connect(args.port)
    for i in range(warmup):
        await send(reader, writer, i)
    writer.close()
    next_index = warmup

    connections = [await connect(args.port) for _ in range(args.connections)]
    start = perf()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index
        while next_index < total and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            if interval_ns:
                scheduled = start + (i - warmup) * interval_ns
                delay = scheduled - perf()
                if delay > 0:
                    await asyncio.sleep(delay / 1e9)
                await send(reader, writer, i)
                latencies[i] = perf() - scheduled
            else:
                await send(reader, writer, i)
                latencies[i] = service[i]

    await asyncio.gather(*(worker(r, w) for r, w in connections))
    span_ns = perf() - start
    for _, w in connections:
        w.close()
    done = [i for i in range(warmup, total) if statuses[i]]

    # after the timed loop: what the answers said
    kinds: dict[str, int] = {}
    build_ids: set[str] = set()
    for i in range(warmup, total):
        if not statuses[i]:
            continue
        try:
            answer = json.loads(bodies[i])
        except ValueError:
            answer = {}
        if answer.get("duplicate"):
            kind = f"{statuses[i]} duplicate"
        elif answer.get("builds"):
            kind = f"{statuses[i]} {answer['outcome']} / build {answer['builds'][0]['outcome']}"
            if answer["builds"][0]["id"]:
                build_ids.add(answer["builds"][0]["id"])
        else:
            kind = f"{statuses[i]} {answer.get('outcome') or answer.get('error', '?')}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "mode": "open loop" if args.rate else "closed loop",
        "connections": args.connections,
        "rate": args.rate,
        "sent": len(done),
        "planned": total - warmup,
        "span_s": span_ns / 1e9,
        "throughput_per_s": len(done) / (span_ns / 1e9),
        "latencies_ns": [latencies[i] for i in done],
        "service_ns": [service[i] for i in done],
        "answers": kinds,
        "distinct_build_ids": len(build_ids),
        "sample_answer": json.loads(bodies[done[-1]]) if done else None,
    }


# -- BinderHub stream: bursts of cache hits --------------------------------------


async def read_plain(reader: asyncio.StreamReader) -> tuple[int, list[dict[str, Any]]]:
    """A plain JSON answer, as if it were one ``ready`` event (the floor case)."""
    status, headers = await read_head(reader)
    await read_body(reader, headers)
    return status, [{"phase": "ready" if status == 200 else "http-error", "imageName": None}]


async def one_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, plain: bool = False
) -> dict[str, Any]:
    t0 = perf()
    writer.write(request)
    status, events = await (read_plain(reader) if plain else read_events(reader))
    t1 = perf()
    writer.close()
    last = events[-1] if events else {}
    return {
        "ns": t1 - t0,
        "wall_end": time.time(),
        # when the event before the last one (a log line, for a real build) was read
        "wall_prev": events[-2]["_wall"] if len(events) > 1 else None,
        "status": status,
        "phase": last.get("phase"),
        "image": last.get("imageName"),
        "events": len(events),
        "message": last.get("message"),
    }


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit(args.concurrency * 2 + 64)
    request = stream_request(args.path)
    rounds = []
    deadline = time.monotonic() + args.max_seconds
    for b in range(args.warmup_bursts + args.bursts):
        if time.monotonic() > deadline:
            break
        connections = await asyncio.gather(*(connect(args.port) for _ in range(args.concurrency)))
        started = perf()
        results = await asyncio.wait_for(
            asyncio.gather(*(one_stream(r, w, request, args.plain) for r, w in connections)),
            timeout=max(1.0, deadline - time.monotonic()),
        )
        wall = perf() - started
        rounds.append(
            {
                "warmup": b < args.warmup_bursts,
                "burst_wall_ns": wall,
                "ns": [r["ns"] for r in results],
                "phases": sorted({str(r["phase"]) for r in results}),
                "images": sorted({str(r["image"]) for r in results}),
                "bad": [r for r in results if r["phase"] != "ready"][:3],
            }
        )
        await asyncio.sleep(args.pause)
    return {"concurrency": args.concurrency, "rounds": rounds}


# -- BinderHub stream: many watchers of one build ---------------------------------


async def watch(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit(args.n * 2 + 64)
    request = stream_request(args.path)
    limit = asyncio.Semaphore(64)  # connections being opened at once

    async def client(k: int, sent: list[float]) -> dict[str, Any]:
        async with limit:
            reader, writer = await connect(args.port)
        sent[k] = time.time()
        return await one_stream(reader, writer, request)

    sent = [0.0] * args.n
    started = time.time()
    results = await asyncio.wait_for(
        asyncio.gather(*(client(k, sent) for k in range(args.n)), return_exceptions=True),
        timeout=args.max_seconds,
    )
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if isinstance(r, dict)]
    return {
        "n": args.n,
        "started_wall": started,
        "first_sent_wall": min(sent),
        "last_sent_wall": max(sent),
        "errors": errors[:5],
        "error_count": len(errors),
        "clients": [
            {k: r[k] for k in ("wall_end", "wall_prev", "status", "phase", "image", "events", "ns")}
            for r in ok
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.loadgen")
    sub = parser.add_subparsers(dest="mode", required=True)
    w = sub.add_parser("webhooks")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--deliveries", required=True)
    w.add_argument("--secret-env", required=True)
    w.add_argument("--connections", type=int, default=8)
    w.add_argument("--rate", type=float, default=0.0, help="deliveries/s (open loop)")
    w.add_argument("--max-seconds", type=float, default=60.0)
    b = sub.add_parser("burst")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--path", required=True)
    b.add_argument("--concurrency", type=int, default=50)
    b.add_argument("--bursts", type=int, default=10)
    b.add_argument("--warmup-bursts", type=int, default=1)
    b.add_argument(
        "--plain", action="store_true", help="the answer is plain JSON (a floor), not a stream"
    )
    b.add_argument("--pause", type=float, default=0.2, help="seconds between bursts")
    b.add_argument("--max-seconds", type=float, default=120.0)
    v = sub.add_parser("watch")
    v.add_argument("--port", type=int, required=True)
    v.add_argument("--path", required=True)
    v.add_argument("--n", type=int, default=500)
    v.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    handler = {"webhooks": webhooks, "burst": burst, "watch": watch}[args.mode]
    result = asyncio.run(handler(args))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
