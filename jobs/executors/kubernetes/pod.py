"""The build pod of a Job, as a plain dict: its one container, which runs repo2docker,
what it mounts and its environment. Pure functions: no API calls.

No secret value is ever part of it: credentials are references to Secrets
(``push_credentials``; the git credential's Secret is made for the build,
``credentials``).
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

from ...model import Build
from ...repo2docker.command import (
    CONTENT_PROVIDER_ENV,
    ENGINE,
    buildx_args,
    proxy_environment,
    repo2docker_args,
)
from ...settings import Settings
from ...sources.git_policy import git_policy, provider_git_config, with_git_config
from ...sources.records import REF_PROVIDERS, record_content
from . import rootless
from .credentials import git_config_mounts
from .trust import daemon_trust, trust_env, trusted_authorities

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
Mounts = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
"""What a part of a build pod adds: its volumes, the builder's mounts of them, and the
builder's environment."""


CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
"""Every container of a build pod: unprivileged, no capabilities, a read-only root."""


def container_security(settings: Settings) -> dict[str, Any]:
    """``CONTAINER_SECURITY`` (a copy) for each container of ours in a build pod; with
    ``buildkit-rootless``, whose pod sets no seccomp profile (its daemon's needs none,
    ``rootless``), the runtime's default for the container itself."""
    security = copy.deepcopy(CONTAINER_SECURITY)
    if settings.kubernetes.builder == "buildkit-rootless":
        security["seccompProfile"] = {"type": "RuntimeDefault"}
    return security


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
    (``builder: buildkit``), or to the pod's own (``buildkit-rootless``, ``rootless``);
    nothing for other builders. Pure.

    The environment is builder/'s engine interface (``BUILDKIT_HOST``,
    ``BUILDKIT_TLS_DIR``, ``BUILDKIT_TLS_SERVERNAME``) and the build's registry cache
    (``buildx_args``, the local executor's too) in ``BINDERHUB_SERVICE_BUILDX_ARGS``.
    The client certificate's Secret is mounted read-only; buildx's own state goes to
    ``$DOCKER_CONFIG`` (``~/.docker`` in the ``/tmp`` emptyDir, or ``push_credentials``').
    """
    k8s = settings.kubernetes
    if k8s.builder == "buildkit-rootless":
        return rootless.builder_mounts(settings, image)
    if k8s.builder != "buildkit" or k8s.buildkit_host is None:
        return [], [], []
    # the service's cache settings (cache, cache_image_manifest, ...) with the pods' daemon
    cache = settings.buildkit.model_copy(update={"host": k8s.buildkit_host})
    env: list[dict[str, Any]] = [
        {"name": "BUILDKIT_HOST", "value": k8s.buildkit_host},
        {"name": BUILDX_ARGS_ENV, "value": json.dumps(buildx_args(cache, image))},
    ]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if k8s.buildkit_tls_secret is not None:
        env.append({"name": "BUILDKIT_TLS_DIR", "value": BUILDKIT_TLS_DIR})
        keys = k8s.buildkit_tls_keys  # the Secret's names for them (cert-manager's, ...)
        files = zip((keys.ca, keys.cert, keys.key), BUILDKIT_TLS_FILES, strict=True)
        volumes.append(
            {
                "name": "buildkit-tls",
                "secret": {
                    "secretName": k8s.buildkit_tls_secret,
                    "items": [{"key": key, "path": path} for key, path in files],
                },
            }
        )
        mounts.append({"name": "buildkit-tls", "mountPath": BUILDKIT_TLS_DIR, "readOnly": True})
    if k8s.buildkit_tls_servername:
        env.append({"name": "BUILDKIT_TLS_SERVERNAME", "value": k8s.buildkit_tls_servername})
    return volumes, mounts, env


NO_PROXY = "localhost,127.0.0.1,.svc,.cluster.local"
"""A record's build's ``NO_PROXY`` when ``kubernetes.env`` gives none (with
``kubernetes.buildkit_host``'s host after it): the cluster's own services, the BuildKit
daemon's included, are not asked through ``providers.proxy``."""


def record_env(build: Build, settings: Settings) -> list[dict[str, Any]]:
    """A record's build (issue 25): its provider in ``CONTENT_PROVIDER_ENV`` (the
    ConfigMap's configuration file makes that provider's class the only one), and
    ``providers.proxy`` (``proxy_environment``) over ``kubernetes.env``'s proxy, with
    ``NO_PROXY`` when that has none. A git build gets only ``providers.proxy`` for gists
    (``provider_git_config``, as git configuration in its environment). Pure;
    ``pod_mounts`` puts it after ``trust_env`` and drops the names it replaces."""
    if build.provider == "git":
        gist = with_git_config({}, provider_git_config(settings.providers.proxy))
        return [{"name": k, "value": v} for k, v in sorted(gist.items())]
    env = {CONTENT_PROVIDER_ENV: build.provider}
    proxy = proxy_environment(settings.providers.proxy)
    if proxy and not {"NO_PROXY", "no_proxy"} & settings.kubernetes.env.keys():
        host = urlsplit(settings.kubernetes.buildkit_host or "").hostname
        no_proxy = f"{NO_PROXY},{host}" if host else NO_PROXY
        proxy.update(NO_PROXY=no_proxy, no_proxy=no_proxy)
    env.update(proxy)
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def builder_args(build: Build, settings: Settings) -> list[str]:
    """repo2docker's arguments in the builder container: the ConfigMap's configuration
    file; with a Docker daemon through the socket, repo2docker's own ``docker`` engine,
    so that a stock repo2docker image (with the docker CLI and buildx) builds. A
    record's build is handed the version it is named after (``record_content``), never
    the record as asked, and no ref but a Mercurial changeset (``REF_PROVIDERS``)."""
    if build.provider == "git":
        # a mirror's, if any (the image keeps its name)
        repo, sha = settings.fetch_url(build.repo), build.sha
    elif build.provider in REF_PROVIDERS:  # a repository at a changeset
        repo, sha = record_content(build.provider, build.repo, build.sha), build.sha
    else:
        repo, sha = record_content(build.provider, build.repo, build.sha), None
    return repo2docker_args(
        settings.repo2docker,
        image=build.image,
        repo=repo,
        sha=sha,
        config_file=f"{CONFIG_DIR}/{CONFIG_FILE}",
        engine=ENGINE if settings.kubernetes.uses_buildkit else "docker",
    )


def base_mounts(build: Build, settings: Settings, config_map: str) -> Mounts:
    """What every build pod has: ``/tmp`` (an emptyDir of its own, also ``HOME``), the
    configuration file of the ConfigMap ``config_map``, git's policy (no prompts, the
    allowed transports, no system configuration: not this machine's environment), the
    build's id; with ``builder: docker-socket``, the node's Docker socket."""
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
        {"name": "repo2docker-config", "configMap": {"name": config_map}},
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


def pod_mounts(build: Build, settings: Settings, config_map: str) -> Mounts:
    """Everything a build pod mounts and gets in its environment, in this order:
    ``base_mounts``, ``push_credentials``, ``buildkit_client``, the git credential of
    its repository only, in a Secret of its own (``credentials.git_config_mounts``),
    ``trust_env`` and, for a record's build, ``record_env`` (in place of the names of
    ``trust_env`` it sets)."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = []
    record = record_env(build, settings)
    replaced = {item["name"] for item in record}
    trust = [item for item in trust_env(settings) if item["name"] not in replaced]
    for more_volumes, more_mounts, more_env in (
        base_mounts(build, settings, config_map),
        push_credentials(settings),
        buildkit_client(settings, build.image),
        git_config_mounts(build, settings),
        ([], [], trust + record),
    ):
        volumes += more_volumes
        mounts += more_mounts
        env += more_env
    return volumes, mounts, env


def pod_security_context(settings: Settings) -> dict[str, Any]:
    """The pod's ``securityContext``: ``kubernetes.run_as_user`` (non-root declared as
    such) and ``run_as_groups``, the runtime's default seccomp profile (with
    ``buildkit-rootless`` on the builder container only: the daemon's needs none,
    ``rootless``)."""
    k8s = settings.kubernetes
    security: dict[str, Any] = {"runAsUser": k8s.run_as_user, "runAsGroup": k8s.run_as_user}
    if k8s.builder != "buildkit-rootless":
        security["seccompProfile"] = {"type": "RuntimeDefault"}
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
        "securityContext": container_security(settings),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if k8s.resources:
        container["resources"] = {key: dict(value) for key, value in k8s.resources.items()}
    return container


def build_pod_spec(build: Build, settings: Settings, config_map: str) -> dict[str, Any]:
    """The build pod: never restarted, no service account token, no service links, and
    the scheduling settings of ``kubernetes`` (service account, node selector,
    tolerations, affinity, priority class)."""
    k8s = settings.kubernetes
    volumes, mounts, env = pod_mounts(build, settings, config_map)
    ca_volumes, init_containers = trusted_authorities(settings, container_security(settings))
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(settings),
        "containers": [builder_container(settings, builder_args(build, settings), mounts, env)],
        "volumes": volumes + ca_volumes,
    }
    if k8s.builder == "buildkit-rootless":
        # after the bundle is written; the daemon trusts kubernetes.ca_bundle and gets
        # kubernetes.env (the proxy) as the shared daemon does
        daemon_mounts, daemon_env = daemon_trust(settings)
        init_containers.append(rootless.daemon_container(settings, daemon_mounts, daemon_env))
    if init_containers:
        pod_spec["initContainers"] = init_containers
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
