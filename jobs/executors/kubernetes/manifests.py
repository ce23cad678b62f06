"""Kubernetes objects for builds, as plain dicts: the build Job, repo2docker's ConfigMap,
and the labels and names that find them. Pure functions: no API calls.

A build is one Job whose name is derived from the image name, so the API server
itself refuses a second Job for the same image (409), whichever replica asks.
Every Job is created suspended; the queue keeper lets it run (``executor``). Its pod
is ``pod``'s.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from ...model import Build
from ...repo2docker.command import POD_CONFIG
from ...settings import Settings
from .pod import BUILDX_ARGS_ENV, CONFIG_FILE, build_pod_spec

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "binderhub-service"

ANNOTATION = "binderhub-service/"
"""Prefix of our own labels and annotations."""
LABEL_BUILD_ID = ANNOTATION + "build-id"
LABEL_COMMIT = ANNOTATION + "commit"
ANNOTATIONS = ("repo", "ref", "ref-kind", "commit", "image", "build-id", "trigger", "queued-at")
PROVIDER = ANNOTATION + "provider"
"""Where the build's content comes from (``Build.provider``: ``git``, ``zenodo``, ...);
a Job without it (made before issue 25) builds a git commit."""
REQUESTER = ANNOTATION + "requester"
"""Who asked for the build (quotas count it): the name as an annotation, and as a
label its hash (a label value is at most 63 of a few characters), to select them."""

BUILDX_ARGS_CONFIG = f"""\
# builder: buildkit. The build's registry cache arrives in the pod's environment.
import json, os

c.DockerEngine.extra_buildx_build_args = json.loads(os.environ.get("{BUILDX_ARGS_ENV}") or "[]")
"""


def selector_labels(settings: Settings) -> dict[str, str]:
    """Labels that select this service's build Jobs and pods (and nothing else)."""
    return {
        LABEL_MANAGED_BY: MANAGER,
        LABEL_INSTANCE: settings.kubernetes.instance,
        LABEL_COMPONENT: "build",
    }


def label_selector(settings: Settings) -> str:
    return ",".join(f"{key}={value}" for key, value in selector_labels(settings).items())


def config_map_name(settings: Settings) -> str:
    return f"{settings.kubernetes.instance}-repo2docker"


def lease_name(settings: Settings) -> str:
    """The Lease whose holder keeps the queue (lets suspended Jobs run)."""
    return f"{settings.kubernetes.instance}-queue"


def make_config_map(settings: Settings, namespace: str) -> dict[str, Any]:
    """repo2docker's configuration file for build pods (``POD_CONFIG``): only the Git
    content provider, or for a record's build the one provider its pod names; with
    ``builder: buildkit``, also the extra buildx arguments read from the pod's
    ``BINDERHUB_SERVICE_BUILDX_ARGS``."""
    config = POD_CONFIG
    if settings.kubernetes.uses_buildkit:
        config += BUILDX_ARGS_CONFIG
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(settings),
            "namespace": namespace,
            "labels": {LABEL_NAME: MANAGER, **selector_labels(settings)},
        },
        "data": {CONFIG_FILE: config},
    }


def requester_label(requester: str) -> str:
    """The label value for a requester: 40 hex digits of its SHA-256."""
    return hashlib.sha256(requester.encode()).hexdigest()[:40]


def job_ttl(settings: Settings) -> int:
    """``ttlSecondsAfterFinished``: the setting, or the longest quota window that is on
    if that is longer. Quotas count finished builds from their Jobs, so a Job must
    outlive the window it counts in."""
    windows = [
        limits.window
        for limits in (settings.quotas.per_user, settings.quotas.per_repo)
        if limits.builds_per_window
    ]
    return max([settings.kubernetes.ttl_seconds_after_finished, *map(math.ceil, windows)])


LABEL_VALUE_RE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
"""A label value the API server takes: at most 63 characters, alphanumerics, ``-``,
``_`` and ``.``, beginning and ending with an alphanumeric (Kubernetes' documentation,
"Labels and Selectors")."""


def label_value(text: str) -> str:
    """``text`` as a label value: as it is when it is one (a commit, a record's version
    such as ``3242081`` or ``1700000000.123456``); otherwise (a SWHID's ``:``, a long
    CKAN version) its characters outside the label's set made ``-``, cut to 50 and
    trimmed, then ``-`` and 12 hex digits of its SHA-256, so that two values differ.
    The exact text stays in the annotation. Pure."""
    if LABEL_VALUE_RE.match(text):
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:50].strip("-_.")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{readable}-{digest}" if readable else digest


def job_labels(build: Build, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations of ``build``'s Job and pod: this service's selector
    labels, the build's id and commit (a record's version, as a ``label_value``), its
    facts (``ANNOTATIONS`` and ``PROVIDER``, read back by ``build_from_job``) and who
    asked (``requester_label``)."""
    labels = {
        LABEL_NAME: MANAGER,
        **selector_labels(settings),
        LABEL_BUILD_ID: build.id,
        LABEL_COMMIT: label_value(build.sha),
    }
    facts = {
        "repo": build.repo,
        "ref": build.ref,
        "ref-kind": build.ref_kind,
        "commit": build.sha,
        "image": build.image,
        "build-id": build.id,
        "trigger": build.trigger,
        "queued-at": f"{build.created_at:.6f}",
    }
    annotations = {ANNOTATION + key: facts[key] for key in ANNOTATIONS}
    annotations[PROVIDER] = build.provider
    if build.requester is not None:
        labels[REQUESTER] = requester_label(build.requester)
        annotations[REQUESTER] = build.requester
    return labels, annotations


def make_build_job(build: Build, settings: Settings, namespace: str) -> dict[str, Any]:
    """The Job that builds and pushes ``build.image``; created suspended, never retried
    (``backoffLimit: 0``), ended at ``limits.build_timeout``, deleted ``job_ttl`` after
    it finished. Its parts: ``job_labels``, ``pod.build_pod_spec``.

    No secret value is ever part of it: credentials are references to Secrets (the git
    credential's is made for the build, ``credentials``).
    """
    labels, annotations = job_labels(build, settings)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": build.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, math.ceil(settings.limits.build_timeout)),
            "ttlSecondsAfterFinished": job_ttl(settings),
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": build_pod_spec(build, settings, config_map_name(settings)),
            },
        },
    }


def build_from_job(job: dict[str, Any] | Any) -> dict[str, str] | None:
    """The build facts a Job carries in its annotations (``provider`` ``git`` when it
    has none), or None for a foreign Job."""
    annotations = _metadata(job).get("annotations") or {}
    facts = {key: annotations.get(ANNOTATION + key) for key in ANNOTATIONS}
    if any(value is None for value in facts.values()):
        return None
    found = {key: str(value) for key, value in facts.items()}
    found["provider"] = str(annotations.get(PROVIDER) or "git")
    if annotations.get(REQUESTER) is not None:
        found["requester"] = str(annotations[REQUESTER])
    return found


def _metadata(job: dict[str, Any] | Any) -> dict[str, Any]:
    if isinstance(job, dict):
        return dict(job.get("metadata") or {})
    meta = job.metadata
    return {"annotations": meta.annotations, "labels": meta.labels, "name": meta.name}
