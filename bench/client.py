"""A keep-alive HTTP load client, run by bench.run as a separate process.

One TCP connection (HTTP/1.1 keep-alive, TCP_NODELAY), one request at a time; each
request's wall time is taken with ``time.perf_counter_ns`` from just before the
request is written to just after the whole response body has been read. Prints one
JSON object on standard output:

``{"first_ns": …, "warmup_ns": [...], "latencies_ns": [...], "span_s": …}``

``first_ns`` is the first request of the connection (part of the warm-up);
``span_s`` the wall time from the first warm-up request to the last measured one.
``$BENCH_API_TOKEN``, when set, is sent as ``Authorization: Bearer …``.

Usage: ``python -m bench.client --port P (--build REPO REF | --post-json BODY | --get PATH)
--n N --warmup W [--accept TYPE] [--expect-text TEXT ...]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--build", nargs=2, metavar=("REPO", "REF"))
    what.add_argument(
        "--post-json",
        metavar="BODY",
        help="POST this JSON body to /api/v1/builds (e.g. a record's DOI as the repo)",
    )
    what.add_argument("--get", metavar="PATH")
    parser.add_argument("--accept", help="an Accept header (text/event-stream for a stream)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--expect-outcome",
        default="cached",
        help="for --build and --post-json: the 'outcome' every answer must carry "
        "(checked after timing)",
    )
    parser.add_argument(
        "--expect-text",
        action="append",
        default=[],
        help="a text every answer's body must hold (an image name; checked after timing); "
        "repeatable",
    )
    args = parser.parse_args(argv)

    posting = bool(args.build or args.post_json)
    if posting:
        method, path = "POST", "/api/v1/builds"
        body: bytes | None = (
            json.dumps({"repo": args.build[0], "ref": args.build[1]}).encode()
            if args.build
            else json.dumps(json.loads(args.post_json)).encode()
        )
        headers = {"Content-Type": "application/json"}
        expect_status = 200
    else:
        method, path, body, headers = "GET", args.get, None, {}
        expect_status = 200
    if args.accept:
        headers["Accept"] = args.accept
    token = os.environ.get("BENCH_API_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"

    conn = http.client.HTTPConnection(args.host, args.port, timeout=30)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    total = args.warmup + args.n
    times: list[int] = []
    bodies: list[bytes] = []
    statuses: list[int] = []
    perf = time.perf_counter_ns
    start = perf()
    for _ in range(total):
        t0 = perf()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        t1 = perf()
        times.append(t1 - t0)
        statuses.append(response.status)
        bodies.append(data)
    span_s = (perf() - start) / 1e9
    conn.close()

    # checks after the timed loop, so they cost nothing inside it
    for status, data in zip(statuses, bodies, strict=True):
        if status != expect_status:
            print(f"unexpected HTTP {status}: {data[:500]!r}", file=sys.stderr)
            return 1
        missing = [text for text in args.expect_text if text.encode() not in data]
        if missing:
            print(f"no {missing[0]!r} in {data[:500]!r}", file=sys.stderr)
            return 1
        if posting:
            outcome = json.loads(data).get("outcome")
            if outcome != args.expect_outcome:
                print(f"unexpected outcome {outcome!r}: {data[:500]!r}", file=sys.stderr)
                return 1
    json.dump(
        {
            "first_ns": times[0],
            "warmup_ns": times[: args.warmup],
            "latencies_ns": times[args.warmup :],
            "span_s": span_s,
            "sample_body": json.loads(bodies[-1]) if posting else bodies[-1].decode()[:2000],
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
