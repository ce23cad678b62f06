"""Record cache hits (issue 25): a record of every content provider asked again once
resolved, through the API and the BinderHub stream.

One ``binderhub-service serve`` pointed at every provider of bench/record_cases.py
(the stand-in of the providers' APIs under their real host names behind a CONNECT proxy
and a test CA, a real ``hg serve``, the bench's ``git daemon`` serving a gist through
``mirrors``). Per case (Zenodo, Figshare, Dataverse, HydroShare, CKAN, Software
Heritage, Mercurial by branch and by changeset id, a gist):

1. a tiny image (one file, ``docker import``) is pushed under the name the service
   gives the version the provider serves (``jobs.naming``), so the image is in the
   registry and nothing is built;
2. one ``POST /api/v1/builds`` from this process resolves the record (its provider is
   asked) and must answer ``200 cached`` naming that image (*first request*); one
   stream request (``GET /build/<provider>/<spec>?build_only=true``, ``Accept:
   text/event-stream``) must answer the one event ``ready`` with that image (it may
   resolve again: a Dataverse DOI is another source than its page);
3. ``bench.client`` (another process, one keep-alive connection, one request at a
   time, as in the ``cache_hit`` benchmark) sends 50 warm-up and N measured POSTs of
   the same body, then the same number of stream requests, each answered ``cached`` /
   ``ready`` with the image. No provider may see a request during either run
   (``Providers.contacts``): the figures are of the service's resolution caches
   (``providers.cache_seconds``, 300 s; ``ref_cache_seconds``, 30 s, for the gist's
   ``HEAD``; each case's runs take a few seconds) and its registry cache, not of the
   provider.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from jobs.settings import load_settings
from testkit.components import GitServer, Registry
from tests.integration.tiny_images import distinct_image, push_as, remove_made

from .common import (
    AUTH_HEADERS,
    cpu_seconds,
    latency_summary,
    registry_has,
    run_client,
    say,
    start_server,
)
from .record_cases import Providers, RecordCase, providers, record_cases

GOAL_MEDIAN_MS = 2.0
READY = 'data: {"phase":"ready",'
"""How a ``ready`` event begins (the service writes compact JSON), checked in every
streamed answer."""


def post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    """One POST /api/v1/builds: status, answer, milliseconds."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/builds",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **AUTH_HEADERS},
        method="POST",
    )
    started = time.perf_counter_ns()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer = json.loads(response.read())
        status = int(response.status)
    return status, answer, (time.perf_counter_ns() - started) / 1e6


def get_stream(port: int, path: str) -> tuple[list[dict[str, Any]], float]:
    """One stream request read to its end: its events' data, milliseconds."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Accept": "text/event-stream", **AUTH_HEADERS},
    )
    started = time.perf_counter_ns()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        text = response.read().decode()
    events = [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]
    return events, (time.perf_counter_ns() - started) / 1e6


def asked_meanwhile(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The providers asked between two ``Providers.contacts``, and how often."""
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def first_requests(port: int, where: Providers, case: RecordCase) -> dict[str, Any]:
    """The first POST (it resolves: its provider must be asked) and the first stream
    request, both answered a cache hit of ``case.image``. Raises RuntimeError."""
    before = where.contacts()
    status, answer, post_ms = post(port, case.body)
    if (status, answer.get("outcome"), answer.get("image")) != (200, "cached", case.image):
        raise RuntimeError(f"{case.name}: the first request was answered {status} {answer}")
    resolved = asked_meanwhile(before, where.contacts())
    if not resolved:
        raise RuntimeError(f"{case.name}: the first request asked no provider")
    before = where.contacts()
    events, stream_ms = get_stream(port, case.stream_path)
    ready = [{"phase": "ready", "imageName": case.image}]
    if [{k: e.get(k) for k in ("phase", "imageName")} for e in events] != ready:
        raise RuntimeError(f"{case.name}: the first stream request was answered {events}")
    return {
        "body": case.body,
        "stream_path": case.stream_path,
        "image": case.image,
        "asks": case.asks,
        "first_request_ms": post_ms,
        "first_request_asked": resolved,
        "first_stream_ms": stream_ms,
        "first_stream_asked": asked_meanwhile(before, where.contacts()),
    }


def run_case(
    server_port: int, pid: int, where: Providers, case: RecordCase, *, n: int, warmup: int
) -> dict[str, Any]:
    """``first_requests``, then the POST and stream runs of ``bench.client``. Raises
    RuntimeError when an answer is not a cache hit of ``case.image`` or a provider was
    asked during a run."""
    result = first_requests(server_port, where, case)
    runs = [
        ("api", ["--post-json", json.dumps(case.body)]),
        ("stream", ["--get", case.stream_path, "--accept", "text/event-stream"]),
    ]
    for kind, args in runs:
        say(f"record cache hit, {case.name} {kind}: {warmup} warm-up + {n} requests")
        load = os.getloadavg()
        before = where.contacts()
        cpu_before = cpu_seconds(pid)
        expect = ["--expect-text", case.image]
        if kind == "stream":
            expect += ["--expect-text", READY]
        out = run_client(server_port, [*args, *expect], n, warmup)
        cpu = cpu_seconds(pid) - cpu_before
        asked = asked_meanwhile(before, where.contacts())
        if asked:
            raise RuntimeError(f"{case.name} {kind}: providers were asked during the run: {asked}")
        summary = latency_summary(out["latencies_ns"])
        summary.update(
            loadavg=load,
            span_s=out["span_s"],
            provider_requests_during_run=0,
            server_cpu_us_per_request=cpu / (n + warmup) * 1e6,
            latencies_ns=out["latencies_ns"],
        )
        result[kind] = summary
        say(
            f"record cache hit, {case.name} {kind}: median {summary['median_ms']:.3f} ms, "
            f"p99 {summary['p99_ms']:.3f} ms"
        )
    return result


def bench_record_cache_hit(
    workdir: Path, registry: Registry, git_server: GitServer, *, n: int, warmup: int
) -> dict[str, Any]:
    """Start every provider (``record_cases.providers``) and a server reaching them;
    publish each case's record and put its image in the registry; measure each case
    (``run_case``). Raises RuntimeError when an answer is not a cache hit of the
    expected image or a provider is asked meanwhile."""
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"goal_median_ms": GOAL_MEDIAN_MS}
    cases: list[RecordCase] = []
    try:
        with providers(workdir, git_server) as where:
            server = start_server(workdir / "service", registry, extra=where.server_settings())
            try:
                prefix = load_settings(server.config_path).image_prefix
                cases = record_cases(where, prefix, workdir)
                for case in cases:
                    say(f"record cache hit: pushing a tiny image as {case.image}")
                    local = distinct_image(f"record-{case.name}")
                    push_as(registry, local, case.image.partition("/")[2])
                    if not registry_has(registry, case.image):
                        raise RuntimeError(f"{case.image} is not in the registry")
                time.sleep(1.0)
                for case in cases:
                    results[case.name] = run_case(
                        server.port, server.pid, where, case, n=n, warmup=warmup
                    )
            finally:
                server.stop()
            if where.proxy.refused:
                raise RuntimeError(f"the proxy refused {where.proxy.refused}: asked elsewhere")
    finally:
        remove_made()
    results["cases"] = [case.name for case in cases]
    results["met"] = all(
        results[name][kind]["median_ms"] <= GOAL_MEDIAN_MS
        for name in results["cases"]
        for kind in ("api", "stream")
    )
    return results
