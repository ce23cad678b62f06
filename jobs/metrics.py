"""Prometheus metrics of the pipeline. Served by the HTTP layer at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUILDS = Counter(
    "binderhub_service_builds_total",
    "Builds that finished, by outcome (built, failed, cancelled, superseded).",
    ["outcome"],
)
BUILD_DURATION = Histogram(
    "binderhub_service_build_duration_seconds",
    "Time from a build's start to its end, for builds that ran.",
    ["outcome"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
QUEUE_LENGTH = Gauge("binderhub_service_queue_length", "Builds waiting for a slot.")
RUNNING = Gauge("binderhub_service_builds_running", "Builds running now.")
CACHE_LOOKUPS = Counter(
    "binderhub_service_image_cache_total",
    "Requests answered from the registry (hit) or needing a build (miss).",
    ["result"],
)
REGISTRY_CHECK = Histogram(
    "binderhub_service_registry_check_seconds",
    "Time the registry took to say whether an image exists (cached answers excluded).",
    ["result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FORGE_REF_REQUESTS = Counter(
    "binderhub_service_forge_ref_requests_total",
    "Forge API requests made to resolve refs, by forge and answer (fetched, not_modified, "
    "not_found, rate_limited, failed).",
    ["forge", "result"],
)
FORGE_STATUSES = Counter(
    "binderhub_service_forge_statuses_total",
    "Commit statuses sent to forges, by forge and result (sent, failed, rate_limited, "
    "dropped: still unsent when the service stopped).",
    ["forge", "result"],
)
QUOTA_REFUSALS = Counter(
    "binderhub_service_quota_refusals_total",
    "Build requests refused because a quota was used up, by quota (e.g. "
    "per_user.builds_per_window).",
    ["quota"],
)
DEPENDENCY_UP = Gauge(
    "binderhub_service_dependency_up",
    "Whether a dependency answered its last check (1) or not (0), by dependency (store, "
    "registry, docker, kubernetes, buildkit, jupyterhub); see /health/ready.",
    ["dependency"],
)
PREPULL_SELECTED = Gauge(
    "binderhub_service_prepull_selected_nodes",
    "Nodes the pre-pull DaemonSet selects (prepull.node_selector); see /api/v1/prepull.",
)
PREPULL_PRESENT = Gauge(
    "binderhub_service_prepull_nodes",
    "Selected nodes that have each pre-pulled image, by image.",
    ["image"],
)
PREPULL_FAILING = Gauge(
    "binderhub_service_prepull_failing_nodes",
    "Selected nodes where the pull of each pre-pulled image fails (ErrImagePull, "
    "ImagePullBackOff), by image.",
    ["image"],
)
