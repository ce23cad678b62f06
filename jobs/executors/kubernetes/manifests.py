"""Kubernetes objects for builds, as plain dicts. Pure functions: no API calls.

A build is one Job whose name is derived from the image name, so the API server
itself refuses a second Job for the same image (409), whichever replica asks.
Every Job is created suspended; the queue keeper lets it run (see kubernetes.py).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from ...model import Build
from ...repo2docker.command import CONTENT_PROVIDER_CONFIG, ENGINE, buildx_args, repo2docker_args
from ...settings import BuildKitSettings, Settings
from ...sources.git_policy import git_policy
from .credentials import git_config_mounts

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
REQUESTER = ANNOTATION + "requester"
"""Who asked for the build (quotas count it): the name as an annotation, and as a
label its hash (a label value is at most 63 of a few characters), to select them."""

CONTAINER = "builder"
CONFIG_DIR = "/etc/binderhub-service"
CONFIG_FILE = "repo2docker_config.py"
DOCKER_CONFIG_DIR = "/etc/binderhub-service-docker"
"""The build pod's ``$DOCKER_CONFIG``: a writable ``emptyDir``."""
DOCKER_CONFIG_FILE = "config.json"
BUILDKIT_TLS_DIR = "/etc/binderhub-service-buildkit"
"""Where build pods find the BuildKit client certificate (``BUILDKIT_TLS_DIR``)."""
BUILDKIT_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
BUILDX_ARGS_ENV = "BINDERHUB_SERVICE_BUILDX_ARGS"
"""The build's extra ``docker buildx build`` arguments (its registry cache), as JSON:
the ConfigMap's configuration file is shared by every build, so it reads them from
the pod's environment."""
BUILDX_ARGS_CONFIG = f"""\
# builder: buildkit. The build's registry cache arrives in the pod's environment.
import json, os

c.DockerEngine.extra_buildx_build_args = json.loads(os.environ.get("{BUILDX_ARGS_ENV}") or "[]")
"""


Mounts = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
"""What a part of a build pod adds: its volumes, the builder's mounts of them, and the
builder's environment."""


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
    """repo2docker's configuration file for build pods: only the Git content provider;
    with ``builder: buildkit``, also the extra buildx arguments read from the pod's
    ``BINDERHUB_SERVICE_BUILDX_ARGS``."""
    config = CONTENT_PROVIDER_CONFIG
    if settings.kubernetes.builder == "buildkit":
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


def _secret_env(name: str, ref: Any) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def push_credentials(settings: Settings) -> Mounts:
    """The volumes, mounts and environment that give a build pod its push credentials.

    ``kubernetes.docker_config_secret`` (the chart makes it from ``registry.username``
    and the password, or takes a ``dockerConfigJson``) is mounted by ``subPath`` as the
    one file ``config.json`` inside an ``emptyDir`` that is ``$DOCKER_CONFIG``: buildx
    writes ``$DOCKER_CONFIG/buildx`` and fails on a read-only directory (issue #15).
    A ``subPath`` mount is not updated when the Secret changes; every build is a new
    pod, which reads the Secret as it is when it starts (rotated tokens, issue #14).
    """
    k8s = settings.kubernetes
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = []
    if k8s.docker_config_secret is not None:
        ref = k8s.docker_config_secret
        volumes += [
            {"name": "docker-config", "emptyDir": {}},
            {
                "name": "docker-config-file",
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": DOCKER_CONFIG_FILE}],
                },
            },
        ]
        mounts += [
            {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR},
            {
                "name": "docker-config-file",
                "mountPath": f"{DOCKER_CONFIG_DIR}/{DOCKER_CONFIG_FILE}",
                "subPath": DOCKER_CONFIG_FILE,
                "readOnly": True,
            },
        ]
        env.append({"name": "DOCKER_CONFIG", "value": DOCKER_CONFIG_DIR})
    if k8s.registry_credentials_secret is not None:
        env.append(
            _secret_env("CONTAINER_ENGINE_REGISTRY_CREDENTIALS", k8s.registry_credentials_secret)
        )
    return volumes, mounts, env


def buildkit_client(settings: Settings, image: str) -> Mounts:
    """The volumes, mounts and environment that send a build to the BuildKit daemon
    (``builder: buildkit``); nothing for other builders. Pure.

    The environment is builder/'s engine interface (``BUILDKIT_HOST``,
    ``BUILDKIT_TLS_DIR``, ``BUILDKIT_TLS_SERVERNAME``) and the build's registry cache
    (``buildx_args``, the local executor's too) in ``BINDERHUB_SERVICE_BUILDX_ARGS``.
    The client certificate's Secret is mounted read-only; buildx's own state goes to
    ``$DOCKER_CONFIG`` (``~/.docker`` in the ``/tmp`` emptyDir, or ``push_credentials``').
    """
    k8s = settings.kubernetes
    if k8s.builder != "buildkit" or k8s.buildkit_host is None:
        return [], [], []
    cache = BuildKitSettings(host=k8s.buildkit_host, cache=settings.buildkit.cache)
    env: list[dict[str, Any]] = [
        {"name": "BUILDKIT_HOST", "value": k8s.buildkit_host},
        {"name": BUILDX_ARGS_ENV, "value": json.dumps(buildx_args(cache, image))},
    ]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if k8s.buildkit_tls_secret is not None:
        env.append({"name": "BUILDKIT_TLS_DIR", "value": BUILDKIT_TLS_DIR})
        volumes.append(
            {
                "name": "buildkit-tls",
                "secret": {
                    "secretName": k8s.buildkit_tls_secret,
                    "items": [{"key": name, "path": name} for name in BUILDKIT_TLS_FILES],
                },
            }
        )
        mounts.append({"name": "buildkit-tls", "mountPath": BUILDKIT_TLS_DIR, "readOnly": True})
    if k8s.buildkit_tls_servername:
        env.append({"name": "BUILDKIT_TLS_SERVERNAME", "value": k8s.buildkit_tls_servername})
    return volumes, mounts, env


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


def job_labels(build: Build, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations of ``build``'s Job and pod: this service's selector
    labels, the build's id and commit, its facts (``ANNOTATIONS``, read back by
    ``build_from_job``) and who asked (``requester_label``)."""
    labels = {
        LABEL_NAME: MANAGER,
        **selector_labels(settings),
        LABEL_BUILD_ID: build.id,
        LABEL_COMMIT: build.sha,
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
    if build.requester is not None:
        labels[REQUESTER] = requester_label(build.requester)
        annotations[REQUESTER] = build.requester
    return labels, annotations


def builder_args(build: Build, settings: Settings) -> list[str]:
    """repo2docker's arguments in the builder container: the ConfigMap's configuration
    file; with a Docker daemon through the socket, repo2docker's own ``docker`` engine,
    so that a stock repo2docker image (with the docker CLI and buildx) builds."""
    return repo2docker_args(
        settings.repo2docker,
        image=build.image,
        repo=build.repo,
        sha=build.sha,
        config_file=f"{CONFIG_DIR}/{CONFIG_FILE}",
        engine=ENGINE if settings.kubernetes.builder == "buildkit" else "docker",
    )


def base_mounts(build: Build, settings: Settings) -> Mounts:
    """What every build pod has: ``/tmp`` (an emptyDir of its own, also ``HOME``), the
    ConfigMap's configuration file, git's policy (no prompts, the allowed transports, no
    system configuration: not this machine's environment), the build's id; with
    ``builder: docker-socket``, the node's Docker socket."""
    k8s = settings.kubernetes
    env = [
        {"name": key, "value": value}
        for key, value in sorted(git_policy(settings.allow_file_urls).items())
    ]
    env += [
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        {"name": "BINDERHUB_SERVICE_BUILD_ID", "value": build.id},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "repo2docker-config", "configMap": {"name": config_map_name(settings)}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir of its own
        {"name": "repo2docker-config", "mountPath": CONFIG_DIR, "readOnly": True},
    ]
    if k8s.builder == "docker-socket":
        volumes.append(
            {"name": "docker-socket", "hostPath": {"path": k8s.docker_socket, "type": "Socket"}}
        )
        mounts.append({"name": "docker-socket", "mountPath": "/var/run/docker.sock"})
    return volumes, mounts, env


def pod_mounts(build: Build, settings: Settings) -> Mounts:
    """Everything a build pod mounts and gets in its environment, in this order:
    ``base_mounts``, ``push_credentials``, ``buildkit_client`` and the git credential of
    its repository only, in a Secret of its own (``credentials.git_config_mounts``)."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = []
    for more_volumes, more_mounts, more_env in (
        base_mounts(build, settings),
        push_credentials(settings),
        buildkit_client(settings, build.image),
        git_config_mounts(build, settings),
    ):
        volumes += more_volumes
        mounts += more_mounts
        env += more_env
    return volumes, mounts, env


def pod_security_context(settings: Settings) -> dict[str, Any]:
    """The pod's ``securityContext``: ``kubernetes.run_as_user`` (non-root declared as
    such) and ``run_as_groups``, the runtime's default seccomp profile."""
    k8s = settings.kubernetes
    security: dict[str, Any] = {
        "runAsUser": k8s.run_as_user,
        "runAsGroup": k8s.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if k8s.run_as_user != 0:
        security["runAsNonRoot"] = True
    if k8s.run_as_groups:
        security["supplementalGroups"] = list(k8s.run_as_groups)
    return security


def builder_container(
    settings: Settings, args: list[str], mounts: list[dict[str, Any]], env: list[dict[str, Any]]
) -> dict[str, Any]:
    """The one container, which runs repo2docker: unprivileged, no capabilities, a
    read-only root file system; ``kubernetes.resources`` when set."""
    k8s = settings.kubernetes
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": k8s.builder_image,
        "imagePullPolicy": k8s.builder_image_pull_policy,
        "command": list(k8s.builder_command),
        "args": args,
        "env": env,
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if k8s.resources:
        container["resources"] = {key: dict(value) for key, value in k8s.resources.items()}
    return container


def build_pod_spec(build: Build, settings: Settings) -> dict[str, Any]:
    """The build pod: never restarted, no service account token, no service links, and
    the scheduling settings of ``kubernetes`` (service account, node selector,
    tolerations, affinity, priority class)."""
    k8s = settings.kubernetes
    volumes, mounts, env = pod_mounts(build, settings)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(settings),
        "containers": [builder_container(settings, builder_args(build, settings), mounts, env)],
        "volumes": volumes,
    }
    if k8s.service_account:
        pod_spec["serviceAccountName"] = k8s.service_account
    if k8s.node_selector:
        pod_spec["nodeSelector"] = dict(k8s.node_selector)
    if k8s.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in k8s.tolerations]
    if k8s.affinity:
        pod_spec["affinity"] = dict(k8s.affinity)
    if k8s.priority_class_name:
        pod_spec["priorityClassName"] = k8s.priority_class_name
    return pod_spec


def make_build_job(build: Build, settings: Settings, namespace: str) -> dict[str, Any]:
    """The Job that builds and pushes ``build.image``; created suspended, never retried
    (``backoffLimit: 0``), ended at ``limits.build_timeout``, deleted ``job_ttl`` after
    it finished. Its parts: ``job_labels``, ``build_pod_spec``.

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
                "spec": build_pod_spec(build, settings),
            },
        },
    }


def build_from_job(job: dict[str, Any] | Any) -> dict[str, str] | None:
    """The build facts a Job carries in its annotations, or None for a foreign Job."""
    annotations = _metadata(job).get("annotations") or {}
    facts = {key: annotations.get(ANNOTATION + key) for key in ANNOTATIONS}
    if any(value is None for value in facts.values()):
        return None
    found = {key: str(value) for key, value in facts.items()}
    if annotations.get(REQUESTER) is not None:
        found["requester"] = str(annotations[REQUESTER])
    return found


def _metadata(job: dict[str, Any] | Any) -> dict[str, Any]:
    if isinstance(job, dict):
        return dict(job.get("metadata") or {})
    meta = job.metadata
    return {"annotations": meta.annotations, "labels": meta.labels, "name": meta.name}
