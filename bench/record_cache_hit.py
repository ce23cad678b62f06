"""Record cache hits (issue 25): a content provider's record asked again once resolved.

One ``binderhub-service serve`` pointed at the providers' stand-in (tests/integration/
provider_standins.py: one TLS server under the real host names, a CONNECT proxy and a
test CA; ``providers.proxy`` and ``ca_bundle`` as the integration tests set them). Per
record, a Zenodo concept DOI (its latest version) and a Figshare article DOI (its
current version):

1. a tiny image (one file, ``docker import``) is pushed under the name the service
   gives the version the stand-in serves (``jobs.naming.image_name_for_record``), so
   the image is in the registry and nothing is built;
2. one ``POST /api/v1/builds {"repo": DOI}`` from this process resolves the record
   (the stand-in is asked) and must answer ``200 cached`` naming that image (*first
   request*);
3. ``bench.client`` (another process, one keep-alive connection, one request at a
   time, as in the ``cache_hit`` benchmark) sends 50 warm-up and N measured POSTs of
   the same DOI, then the same number of BinderHub stream requests
   (``GET /build/<provider>/<DOI>?build_only=true``, ``Accept: text/event-stream``), each answered
   ``cached`` / ``ready`` with the image. The stand-in must see no request during
   either run: the figures are of the service's resolution cache
   (``providers.cache_seconds``, 300 s by default, which each run stays well within)
   and its registry cache, not of the provider.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.naming import image_name_for_record
from jobs.settings import load_settings
from jobs.sources.records import RecordVersion
from testkit.components import Registry
from tests.integration.provider_standins import ConnectProxy, ProviderStandIn, recorded
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

GOAL_MEDIAN_MS = 2.0
HOSTS = ["zenodo.org", "doi.org", "api.figshare.com", "ndownloader.figshare.com"]
ZENODO = "https://zenodo.org/api/records"
FIGSHARE = "https://api.figshare.com/v2/articles/9782777"


@dataclass(frozen=True)
class RecordCase:
    """A record asked for by its DOI, and the version the stand-in resolves it to."""

    name: str
    doi: str
    stream_path: str
    version: RecordVersion


CASES = [
    RecordCase(
        "zenodo",
        "10.5281/zenodo.3242074",
        "/build/zenodo/10.5281/zenodo.3242074?build_only=true",
        RecordVersion("zenodo", "zenodo.org", "3242074", "3242081", "", None, True),
    ),
    RecordCase(
        "figshare",
        "10.6084/m9.figshare.9782777",
        "/build/figshare/10.6084/m9.figshare.9782777?build_only=true",
        RecordVersion("figshare", "figshare.com", "9782777", "3", "", None, True),
    ),
]


def serve_records(standin: ProviderStandIn) -> None:
    """The recorded answers the service resolves the two DOIs from: Zenodo's concept
    record redirecting to its latest version (3242081), Figshare's article (version 3)."""
    standin.redirect(f"{ZENODO}/3242074", f"{ZENODO}/3242081")
    standin.json(f"{ZENODO}/3242081", recorded("zenodo_latest"))
    standin.json(f"{ZENODO}/3242081/files", recorded("zenodo_files"))
    standin.json(FIGSHARE, recorded("figshare_article"))


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


def run_case(
    server_port: int,
    pid: int,
    standin: ProviderStandIn,
    case: RecordCase,
    image: str,
    *,
    n: int,
    warmup: int,
) -> dict[str, Any]:
    """The first request (resolving), then the POST and stream runs of ``bench.client``."""
    asked = len(standin.asked)
    status, answer, first_ms = post(server_port, {"repo": case.doi})
    if (status, answer.get("outcome"), answer.get("image")) != (200, "cached", image):
        raise RuntimeError(f"{case.name}: the first request was answered {status} {answer}")
    resolution = standin.asked[asked:]
    if not resolution:
        raise RuntimeError(f"{case.name}: the first request did not ask the stand-in")
    result: dict[str, Any] = {
        "doi": case.doi,
        "image": image,
        "first_request_ms": first_ms,
        "first_request_asked": resolution,
    }
    runs = [
        ("api", ["--post-json", json.dumps({"repo": case.doi})]),
        ("stream", ["--get", case.stream_path, "--accept", "text/event-stream"]),
    ]
    for kind, args in runs:
        say(f"record cache hit, {case.name} {kind}: {warmup} warm-up + {n} requests")
        load = os.getloadavg()
        before = len(standin.asked)
        cpu_before = cpu_seconds(pid)
        out = run_client(server_port, [*args, "--expect-text", image], n, warmup)
        cpu = cpu_seconds(pid) - cpu_before
        if len(standin.asked) != before:
            raise RuntimeError(
                f"{case.name} {kind}: the provider was asked during the run: "
                f"{standin.asked[before:][:5]}"
            )
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
    workdir: Path, registry: Registry, *, n: int, warmup: int
) -> dict[str, Any]:
    """Start the stand-in, its proxy and a server reaching them; put each record's image
    in the registry; measure each case (``run_case``). Raises RuntimeError when an
    answer is not a cache hit of the expected image or the provider is asked meanwhile."""
    workdir.mkdir(parents=True, exist_ok=True)
    standin = ProviderStandIn(workdir / "standin", HOSTS)
    proxy = ConnectProxy(standin.hosts, standin.port)
    serve_records(standin)
    results: dict[str, Any] = {"goal_median_ms": GOAL_MEDIAN_MS}
    try:
        extra = {"providers": {"proxy": proxy.url}, "ca_bundle": str(standin.ca)}
        server = start_server(workdir / "service", registry, extra=extra)
        try:
            prefix = load_settings(server.config_path).image_prefix
            images = {}
            for case in CASES:
                image = image_name_for_record(prefix, case.version)
                say(f"record cache hit: pushing a tiny image as {image}")
                push_as(registry, distinct_image(f"record-{case.name}"), image.partition("/")[2])
                assert registry_has(registry, image), image
                images[case.name] = image
            time.sleep(1.0)
            for case in CASES:
                results[case.name] = run_case(
                    server.port, server.pid, standin, case, images[case.name], n=n, warmup=warmup
                )
        finally:
            server.stop()
    finally:
        proxy.stop()
        standin.stop()
        remove_made()
    if proxy.refused:
        raise RuntimeError(f"the proxy refused {proxy.refused}: something left for elsewhere")
    met = all(
        results[c.name][kind]["median_ms"] <= GOAL_MEDIAN_MS
        for c in CASES
        for kind in ("api", "stream")
    )
    results["met"] = met
    return results
