"""The walkthrough's JupyterHub in the test cluster, from manifests and a hub configuration we
write (issue 22: no zero-to-jupyterhub source in the repository).

It takes zero-to-jupyterhub values (docs/walkthrough/jhub-values.yaml and the test
environment's) and sets up, the way z2jh's documentation describes them, the parts this
project relies on: the hub's ``services`` (the service registered, with its token; the proxy
routes ``/services/<name>/`` to it), ``loadRoles``, the access labels and the hub, proxy and
single-user NetworkPolicies (``testkit.z2jh``), ``extraConfig`` (the snippet that offers the
built images), ``imagePullSecret``, and the user pod's home volume. Only the options in
``IMPLEMENTED`` are accepted: a walkthrough that starts using another z2jh option fails here
until the test hub does what that option says, instead of silently ignoring it.

The hub runs JupyterHub with KubeSpawner (``hub/jupyterhub_config.py``) and the proxy
configurable-http-proxy, both from the image of ``hub/Dockerfile`` (also the single-user
servers' base). Names, labels, ports and the hub's permissions are z2jh's: Services ``hub``
(8081), ``proxy-api`` (8001) and ``proxy-public`` (80, port name ``http``).

``hub_objects`` is pure (tests/unit/test_hub_install.py); ``install`` applies the objects.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, utils

from testkit import z2jh

HUB_DIR = Path(__file__).resolve().parent / "hub"
CONFIG_DIR = "/usr/local/etc/jupyterhub"

_SERVICE_KEYS = (
    "url",
    "apiToken",
    "oauth_no_confirm",
    "oauth_redirect_uri",
    "oauth_client_id",
    "oauth_roles",
    "oauth_client_allowed_scopes",
    "admin",
    "display",
    "info",
)
_NETWORK_POLICY = [o.split(".", 2)[2] for o in z2jh.OPTIONS if o.startswith("hub.networkPolicy.")]

IMPLEMENTED: tuple[str, ...] = (
    *(f"hub.services.{z2jh.ANY}.{key}" for key in _SERVICE_KEYS),
    *(f"hub.loadRoles.{z2jh.ANY}.{key}" for key in ("description", "scopes", "users", "services")),
    f"hub.extraConfig.{z2jh.ANY}",
    "hub.db.type",
    *(f"hub.networkPolicy.{key}" for key in _NETWORK_POLICY),
    *(f"proxy.chp.networkPolicy.{key}" for key in _NETWORK_POLICY),
    *(f"singleuser.networkPolicy.{key}" for key in _NETWORK_POLICY),
    "proxy.service.type",
    "singleuser.image.name",
    "singleuser.image.tag",
    "singleuser.image.pullPolicy",
    "singleuser.startTimeout",
    "singleuser.initContainers",
    f"singleuser.extraLabels.{z2jh.ANY}",
    "singleuser.storage.type",
    "singleuser.storage.homeMountPath",
    "singleuser.storage.static.pvcName",
    "singleuser.storage.static.subPath",
    "imagePullSecret.create",
    "imagePullSecret.registry",
    "imagePullSecret.username",
    "imagePullSecret.password",
    "imagePullSecret.email",
)
"""The z2jh options the test hub does what z2jh's documentation says for (a subset of
``testkit.z2jh.OPTIONS``); with ``hub.db.type: sqlite-memory`` and
``singleuser.storage.type: static`` only (the test cluster has no storage class)."""

DEFAULTS: dict[str, Any] = {
    "hub": {"services": {}, "loadRoles": {}, "extraConfig": {}, "db": {"type": "sqlite-pvc"}},
    "proxy": {"service": {"type": "LoadBalancer"}},
    "imagePullSecret": {"create": False},
    "singleuser": {
        "image": {"name": "quay.io/jupyterhub/k8s-singleuser-sample", "tag": "4.4.0"},
        "startTimeout": 300,
        "initContainers": [],
        "extraLabels": dict(z2jh.SINGLEUSER_EXTRA_LABELS),
        "storage": {
            "type": "dynamic",
            "homeMountPath": "/home/jovyan",
            "static": {"pvcName": None, "subPath": "{username}"},
        },
    },
}
"""z2jh's documented defaults of the implemented options (the network policies' are in
``testkit.z2jh``)."""

HUB_RULES = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "watch", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
]
"""The hub's permissions in its namespace (z2jh's hub Role): KubeSpawner's user pods, their
claims, secrets and services, and the events it reports while a server starts."""


class UnsupportedOption(ValueError):
    """Values the test hub does not implement; the message names them."""


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base`` as Helm merges values files: mappings key by key,
    anything else (lists included) replaced. Pure."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` over the defaults, after checking that the test hub implements every
    option given. Raises ``UnsupportedOption``. Pure."""
    unsupported = z2jh.undocumented(values, IMPLEMENTED)
    if unsupported:
        raise UnsupportedOption(f"the test hub does not implement: {', '.join(unsupported)}")
    out = merged(DEFAULTS, values)
    if out["hub"]["db"]["type"] != "sqlite-memory":
        raise UnsupportedOption(f"hub.db.type {out['hub']['db']['type']}: only sqlite-memory")
    if out["singleuser"]["storage"]["type"] not in ("static", "none"):
        raise UnsupportedOption(
            f"singleuser.storage.type {out['singleuser']['storage']['type']}: static or none"
        )
    return out


def _meta(name: str, component: str, release: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": {**z2jh.match_labels(component, release), **labels}}


def _deployment(
    name: str, component: str, release: str, container: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    labels = {**z2jh.match_labels(component, release), **z2jh.POD_ACCESS_LABELS[component]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, component, release),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": z2jh.match_labels(component, release)},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "terminationGracePeriodSeconds": 5,
                    "enableServiceLinks": False,
                    **spec,
                },
            },
        },
    }


def _service(
    name: str, component: str, release: str, port: int, target: str, type_: str = "ClusterIP"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, component, release),
        "spec": {
            "type": type_,
            "selector": z2jh.match_labels(component, release),
            "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def _token_env(name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "hub", "key": "proxy-token"}}}


def pull_secret(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``image-pull-secret`` Secret of ``imagePullSecret`` (a docker config)."""
    import base64

    auth = base64.b64encode(f"{settings['username']}:{settings['password']}".encode()).decode()
    entry = {"username": settings["username"], "password": settings["password"], "auth": auth}
    if settings.get("email"):
        entry["email"] = settings["email"]
    config = {"auths": {settings["registry"]: entry}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "image-pull-secret"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json.dumps(config)},
    }


def hub_objects(
    values: Mapping[str, Any], *, image: str, release: str, proxy_token: str
) -> list[dict[str, Any]]:
    """Every object of the test hub for zero-to-jupyterhub ``values`` (see the module
    docstring): ``image`` runs the hub and the proxy, which share ``proxy_token``. Raises
    ``UnsupportedOption`` for values it does not implement. Pure."""
    effective = effective_values(values)
    hub_container = {
        "name": "hub",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["jupyterhub", "--config", f"{CONFIG_DIR}/jupyterhub_config.py"],
        "env": [
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "HUB_RELEASE", "value": release},
            _token_env("CONFIGPROXY_AUTH_TOKEN"),
        ],
        "ports": [{"name": "http", "containerPort": z2jh.HUB_PORT}],
        "readinessProbe": {"httpGet": {"path": "/hub/health", "port": "http"}, "periodSeconds": 2},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    proxy_container = {
        "name": "chp",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "configurable-http-proxy",
            "--ip=",
            "--api-ip=",
            f"--api-port={z2jh.PROXY_API_PORT}",
            f"--default-target=http://hub:{z2jh.HUB_PORT}",
            f"--error-target=http://hub:{z2jh.HUB_PORT}/hub/error",
            f"--port={z2jh.PROXY_HTTP_PORT}",
        ],
        "env": [_token_env("CONFIGPROXY_AUTH_TOKEN")],
        "ports": [
            {"name": "http", "containerPort": z2jh.PROXY_HTTP_PORT},
            {"name": "api", "containerPort": z2jh.PROXY_API_PORT},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/_chp_healthz", "port": "http"},
            "periodSeconds": 2,
        },
    }
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta("hub", "hub", release),
            "stringData": {
                "jupyterhub_config.py": (HUB_DIR / "jupyterhub_config.py").read_text(),
                "values.yaml": yaml.safe_dump(effective),
                "proxy-token": proxy_token,
            },
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("hub", "hub", release)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta("hub", "hub", release),
            "rules": HUB_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta("hub", "hub", release),
            "subjects": [{"kind": "ServiceAccount", "name": "hub"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"},
        },
        _deployment(
            "hub",
            "hub",
            release,
            hub_container,
            serviceAccountName="hub",
            volumes=[{"name": "config", "secret": {"secretName": "hub"}}],
        ),
        _service("hub", "hub", release, z2jh.HUB_PORT, "http"),
        _deployment("proxy", "proxy", release, proxy_container, automountServiceAccountToken=False),
        _service("proxy-api", "proxy", release, z2jh.PROXY_API_PORT, "api"),
        _service(
            "proxy-public", "proxy", release, 80, "http", effective["proxy"]["service"]["type"]
        ),
        *z2jh.network_policies(effective, release),
    ]
    if effective["imagePullSecret"]["create"]:
        objects.append(pull_secret(effective["imagePullSecret"]))
    return objects


def install(
    api_client: client.ApiClient, namespace: str, objects: list[dict[str, Any]], timeout: float
) -> None:
    """Create ``objects`` in ``namespace`` and wait until the hub and the proxy are ready."""
    for obj in objects:
        utils.create_from_dict(api_client, obj, namespace=namespace)
    apps = client.AppsV1Api(api_client)
    deadline = time.monotonic() + timeout
    for name in ("hub", "proxy"):
        while (apps.read_namespaced_deployment(name, namespace).status.ready_replicas or 0) < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test hub's {name} was not ready within {timeout} s")
            time.sleep(1)
