"""Zero-to-jupyterhub (z2jh, the ``jupyterhub`` Helm chart), as facts we write down: the names
of its documented options, the labels and ports of its pods, and its NetworkPolicies as its
documentation describes them (issue 22: the repository holds no z2jh source).

Sources (z2jh 4.4.0): the configuration reference (docs/source/resources/reference.md, built
from the chart's values schema) for option names and defaults; "Kubernetes Network Policies"
in docs/source/administrator/security.md for the policies: each of ``hub``, ``proxy`` and
``singleuser`` admits, on its core port, pods carrying its access label
(``hub.jupyter.org/network-access-<hub|proxy-http|proxy-api|singleuser>: "true"``) in its own
namespace, and with ``interNamespaceAccessLabels: accept`` such pods in any namespace and every
pod of a namespace carrying the label; ``ingress`` adds rules, ``allowedIngressPorts`` opens
ports to anyone; egress allows the core connections (hub to the proxy's API port 8001 and user
pods' 8888; proxy to the hub's 8081 and user pods' 8888; user pods to the hub's 8081 and the
proxy's 8000) plus the ``egressAllowRules`` that are on (every one by default, except
``cloudMetadataServer`` and ``privateIPs`` for user pods) and ``egress``.

What uses it: ``tests/chart/test_walkthrough_values.py`` checks that the walkthrough's z2jh
values use only documented options; ``tests/chart/test_hub_network_access.py`` evaluates these
policies against the service's pods; ``tests/cluster/hub_install.py`` installs the test hub
with them. Pure data and functions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

ANY = "*"
"""In an option name: a name of the operator's choosing (a service, a role, a label)."""

_NETWORK_POLICY = (
    "enabled",
    "ingress",
    "egress",
    "egressAllowRules.cloudMetadataServer",
    "egressAllowRules.dnsPortsCloudMetadataServer",
    "egressAllowRules.dnsPortsKubeSystemNamespace",
    "egressAllowRules.dnsPortsPrivateIPs",
    "egressAllowRules.nonPrivateIPs",
    "egressAllowRules.privateIPs",
    "interNamespaceAccessLabels",
    "allowedIngressPorts",
)
_IMAGE = ("name", "tag", "pullPolicy", "pullSecrets")
_SERVICE_KEYS = (
    # hub.services.<name>: JupyterHub's service keys (c.JupyterHub.services), apiToken for
    # api_token, as z2jh's reference documents them
    "name",
    "admin",
    "command",
    "url",
    "api_token",
    "apiToken",
    "oauth_no_confirm",
    "oauth_client_id",
    "oauth_redirect_uri",
    "oauth_roles",
    "oauth_client_allowed_scopes",
    "display",
    "info",
    "environment",
    "user",
    "cwd",
)
_ROLE_KEYS = ("name", "description", "scopes", "users", "services", "groups")

OPTIONS: tuple[str, ...] = (
    *(f"hub.services.{ANY}.{key}" for key in _SERVICE_KEYS),
    *(f"hub.loadRoles.{ANY}.{key}" for key in _ROLE_KEYS),
    f"hub.extraConfig.{ANY}",
    f"hub.config.{ANY}.{ANY}",
    *(f"hub.networkPolicy.{key}" for key in _NETWORK_POLICY),
    *(f"hub.image.{key}" for key in _IMAGE),
    "hub.db.type",
    "hub.db.url",
    "hub.db.password",
    "hub.db.upgrade",
    "hub.db.pvc.storage",
    "hub.db.pvc.storageClassName",
    "hub.db.pvc.accessModes",
    "hub.baseUrl",
    "hub.cookieSecret",
    "hub.concurrentSpawnLimit",
    "hub.activeServerLimit",
    "hub.allowNamedServers",
    "hub.namedServerLimitPerUser",
    "hub.consecutiveFailureLimit",
    "hub.existingSecret",
    "hub.extraEnv",
    "hub.extraFiles",
    "hub.extraVolumes",
    "hub.extraVolumeMounts",
    "hub.resources",
    "hub.nodeSelector",
    "hub.redirectToServer",
    "hub.shutdownOnLogout",
    "hub.templatePaths",
    "hub.templateVars",
    f"hub.annotations.{ANY}",
    f"hub.labels.{ANY}",
    "imagePullSecret.create",
    "imagePullSecret.automaticReferenceInjection",
    "imagePullSecret.registry",
    "imagePullSecret.username",
    "imagePullSecret.password",
    "imagePullSecret.email",
    "imagePullSecrets",
    "fullnameOverride",
    "nameOverride",
    "debug.enabled",
    *(f"proxy.chp.networkPolicy.{key}" for key in _NETWORK_POLICY),
    *(f"proxy.chp.image.{key}" for key in _IMAGE),
    "proxy.chp.resources",
    "proxy.service.type",
    f"proxy.service.annotations.{ANY}",
    f"proxy.service.labels.{ANY}",
    "proxy.service.nodePorts.http",
    "proxy.service.nodePorts.https",
    "proxy.service.loadBalancerIP",
    "proxy.service.loadBalancerSourceRanges",
    "proxy.https.enabled",
    "proxy.https.type",
    "proxy.https.hosts",
    "proxy.https.letsencrypt.contactEmail",
    "proxy.secretToken",
    *(f"singleuser.networkPolicy.{key}" for key in _NETWORK_POLICY),
    *(f"singleuser.image.{key}" for key in _IMAGE),
    "singleuser.cmd",
    "singleuser.defaultUrl",
    "singleuser.startTimeout",
    "singleuser.uid",
    "singleuser.fsGid",
    "singleuser.serviceAccountName",
    "singleuser.nodeSelector",
    "singleuser.initContainers",
    "singleuser.extraContainers",
    "singleuser.lifecycleHooks",
    "singleuser.extraEnv",
    "singleuser.extraFiles",
    "singleuser.extraPodConfig",
    "singleuser.extraResource.limits",
    "singleuser.extraResource.guarantees",
    "singleuser.extraTolerations",
    f"singleuser.extraLabels.{ANY}",
    f"singleuser.extraAnnotations.{ANY}",
    "singleuser.memory.limit",
    "singleuser.memory.guarantee",
    "singleuser.cpu.limit",
    "singleuser.cpu.guarantee",
    "singleuser.profileList",
    "singleuser.events",
    "singleuser.allowPrivilegeEscalation",
    "singleuser.cloudMetadata.blockWithIptables",
    "singleuser.cloudMetadata.ip",
    "singleuser.storage.type",
    "singleuser.storage.capacity",
    "singleuser.storage.homeMountPath",
    "singleuser.storage.static.pvcName",
    "singleuser.storage.static.subPath",
    "singleuser.storage.dynamic.storageClass",
    "singleuser.storage.dynamic.pvcNameTemplate",
    "singleuser.storage.dynamic.volumeNameTemplate",
    "singleuser.storage.dynamic.storageAccessModes",
    "singleuser.storage.dynamic.subPath",
    "singleuser.storage.extraVolumes",
    "singleuser.storage.extraVolumeMounts",
    f"singleuser.storage.extraLabels.{ANY}",
    "scheduling.userScheduler.enabled",
    "scheduling.podPriority.enabled",
    "scheduling.userPlaceholder.enabled",
    "scheduling.userPlaceholder.replicas",
    "scheduling.userPods.nodeAffinity.matchNodePurpose",
    "scheduling.corePods.nodeAffinity.matchNodePurpose",
    "prePuller.hook.enabled",
    "prePuller.continuous.enabled",
    "prePuller.pullProfileListImages",
    "prePuller.extraImages",
    "cull.enabled",
    "cull.users",
    "cull.adminUsers",
    "cull.removeNamedServers",
    "cull.timeout",
    "cull.every",
    "cull.concurrency",
    "cull.maxAge",
    "ingress.enabled",
    "ingress.hosts",
    "ingress.tls",
    f"ingress.annotations.{ANY}",
    "ingress.ingressClassName",
)
"""The option names of z2jh 4.4.0's configuration reference this project's docs may use, as
dotted paths (``*``: any name). Not the whole reference: an option missing here is added when
the docs start using it, from that reference."""


def _matches(path: tuple[str, ...], option: tuple[str, ...]) -> bool:
    return len(path) == len(option) and all(
        o in (ANY, p) for p, o in zip(path, option, strict=True)
    )


def _leaves(
    values: Mapping[str, Any], known: list[tuple[str, ...]]
) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of each option in ``values``: down the mappings until a path is one of
    ``known`` (whose value may be a mapping, as ``hub.extraConfig.<name>``), its value is
    no mapping, or an empty one. Keys stay whole (a label's name has dots)."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            here = (*path, str(key))
            if isinstance(value, Mapping) and value and not any(_matches(here, o) for o in known):
                walk(value, here)
            else:
                found.append((here, value))

    walk(values, ())
    return found


def option_paths(values: Mapping[str, Any], options: Iterable[str] = OPTIONS) -> list[str]:
    """The dotted paths of ``values``' options (see ``_leaves``), in file order. Pure."""
    known = [tuple(option.split(".")) for option in options]
    return [".".join(path) for path, _ in _leaves(values, known)]


def undocumented(values: Mapping[str, Any], options: Iterable[str] = OPTIONS) -> list[str]:
    """The dotted paths of ``values`` that are none of ``options`` (z2jh's documented ones by
    default), in file order. An empty mapping is fine where options start
    (``loadRoles: {}``). Pure."""
    known = [tuple(option.split(".")) for option in options]

    def documented(path: tuple[str, ...], value: Any) -> bool:
        if any(_matches(path, o) for o in known):
            return True
        empty = isinstance(value, Mapping) and not value
        return empty and any(_matches(path, o[: len(path)]) for o in known if len(o) > len(path))

    return [".".join(p) for p, value in _leaves(values, known) if not documented(p, value)]


# ------------------------------------------------------------------------------------------
# pods and NetworkPolicies
# ------------------------------------------------------------------------------------------

APP = "jupyterhub"
ACCESS = "hub.jupyter.org/network-access-"
HUB_PORT, PROXY_HTTP_PORT, PROXY_API_PORT, SINGLEUSER_PORT = 8081, 8000, 8001, 8888


def match_labels(component: str, release: str) -> dict[str, str]:
    """The labels z2jh's selectors use for a component's pods (``hub``, ``proxy``,
    ``singleuser-server``)."""
    return {"app": APP, "release": release, "component": component}


POD_ACCESS_LABELS = {
    "hub": {
        f"{ACCESS}proxy-api": "true",
        f"{ACCESS}proxy-http": "true",
        f"{ACCESS}singleuser": "true",
    },
    "proxy": {f"{ACCESS}hub": "true", f"{ACCESS}singleuser": "true"},
}
"""The access labels z2jh puts on its own pods, so that they reach each other."""

SINGLEUSER_EXTRA_LABELS = {f"{ACCESS}hub": "true"}
"""``singleuser.extraLabels``' default: user pods reach the hub's API."""

_EGRESS_DEFAULTS = {
    "cloudMetadataServer": True,
    "dnsPortsCloudMetadataServer": True,
    "dnsPortsKubeSystemNamespace": True,
    "dnsPortsPrivateIPs": True,
    "nonPrivateIPs": True,
    "privateIPs": True,
}
NETWORK_POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "hub": {"allowedIngressPorts": [], "egressAllowRules": _EGRESS_DEFAULTS},
    "proxy": {"allowedIngressPorts": ["http", "https"], "egressAllowRules": _EGRESS_DEFAULTS},
    "singleuser": {
        "allowedIngressPorts": [],
        "egressAllowRules": {**_EGRESS_DEFAULTS, "cloudMetadataServer": False, "privateIPs": False},
    },
}
"""The documented defaults of ``<hub|proxy.chp|singleuser>.networkPolicy``, besides
``enabled: true``, ``interNamespaceAccessLabels: ignore`` and empty ``ingress``/``egress``."""

CLOUD_METADATA_IP = "169.254.169.254"  # singleuser.cloudMetadata.ip's default
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def network_policy_settings(values: Mapping[str, Any], component: str) -> dict[str, Any]:
    """A component's (``hub``, ``proxy``, ``singleuser``) ``networkPolicy`` values with the
    documented defaults filled in. Pure."""
    path = {"hub": ("hub",), "proxy": ("proxy", "chp"), "singleuser": ("singleuser",)}[component]
    given: Any = values
    for key in (*path, "networkPolicy"):
        given = given.get(key, {}) if isinstance(given, Mapping) else {}
    defaults = NETWORK_POLICY_DEFAULTS[component]
    return {
        "enabled": given.get("enabled", True),
        "ingress": list(given.get("ingress") or []),
        "egress": list(given.get("egress") or []),
        "interNamespaceAccessLabels": given.get("interNamespaceAccessLabels", "ignore"),
        "allowedIngressPorts": list(
            given.get("allowedIngressPorts", defaults["allowedIngressPorts"])
        ),
        "egressAllowRules": {**defaults["egressAllowRules"], **given.get("egressAllowRules", {})},
    }


def _labelled(label: str, inter_namespace: str) -> list[dict[str, Any]]:
    """The ``from`` peers of an access label: labelled pods of the policy's namespace, or
    with ``accept`` labelled pods of any namespace and every pod of labelled namespaces."""
    pods: dict[str, Any] = {"podSelector": {"matchLabels": {label: "true"}}}
    if inter_namespace != "accept":
        return [pods]
    return [
        {**pods, "namespaceSelector": {}},
        {"namespaceSelector": {"matchLabels": {label: "true"}}},
    ]


def _egress_rules(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    allow = settings["egressAllowRules"]
    rules: list[dict[str, Any]] = []
    dns_to: list[dict[str, Any]] = []
    if allow["dnsPortsCloudMetadataServer"]:
        dns_to.append({"ipBlock": {"cidr": f"{CLOUD_METADATA_IP}/32"}})
    if allow["dnsPortsKubeSystemNamespace"]:
        dns_to.append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
        )
    if allow["dnsPortsPrivateIPs"]:
        dns_to += [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_RANGES]
    if dns_to:
        ports = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
        rules.append({"ports": ports, "to": dns_to})
    if allow["nonPrivateIPs"]:
        blocked = [*PRIVATE_RANGES, f"{CLOUD_METADATA_IP}/32"]
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": blocked}}]})
    if allow["privateIPs"]:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_RANGES]})
    if allow["cloudMetadataServer"]:
        rules.append({"to": [{"ipBlock": {"cidr": f"{CLOUD_METADATA_IP}/32"}}]})
    return rules + list(settings["egress"])


def _to(component: str, release: str, *ports: int) -> dict[str, Any]:
    return {
        "to": [{"podSelector": {"matchLabels": match_labels(component, release)}}],
        "ports": [{"port": port} for port in ports],
    }


def network_policies(values: Mapping[str, Any], release: str) -> list[dict[str, Any]]:
    """z2jh's NetworkPolicies ``hub``, ``proxy`` and ``singleuser`` for ``values`` (its
    ``networkPolicy`` options; any other key is ignored here) in release ``release``, as the
    module docstring describes them. A disabled policy is left out. Pure."""
    core: dict[str, tuple[str, list[tuple[list[str], str]], list[dict[str, Any]]]] = {
        "hub": ("hub", [(["http"], "hub")], [
            _to("proxy", release, PROXY_API_PORT),
            _to("singleuser-server", release, SINGLEUSER_PORT),
        ]),
        "proxy": ("proxy", [(["http"], "proxy-http"), (["api"], "proxy-api")], [
            _to("hub", release, HUB_PORT),
            _to("singleuser-server", release, SINGLEUSER_PORT),
        ]),
        "singleuser": ("singleuser-server", [(["notebook-port"], "singleuser")], [
            _to("hub", release, HUB_PORT),
            _to("proxy", release, PROXY_HTTP_PORT),
            _to("autohttps", release, 8080, 8443),
        ]),
    }  # fmt: skip
    policies = []
    for name, (component, labelled_ports, egress) in core.items():
        settings = network_policy_settings(values, name)
        if not settings["enabled"]:
            continue
        ingress: list[dict[str, Any]] = []
        if settings["allowedIngressPorts"]:
            ingress.append({"ports": [{"port": p} for p in settings["allowedIngressPorts"]]})
        for ports, label in labelled_ports:
            ingress.append(
                {
                    "ports": [{"port": p} for p in ports],
                    "from": _labelled(f"{ACCESS}{label}", settings["interNamespaceAccessLabels"]),
                }
            )
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "labels": match_labels(component, release)},
                "spec": {
                    "podSelector": {"matchLabels": match_labels(component, release)},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": ingress + copy.deepcopy(settings["ingress"]),
                    "egress": copy.deepcopy(egress) + _egress_rules(settings),
                },
            }
        )
    return policies
