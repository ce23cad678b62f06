"""The chart's pre-pull values (issue 26): the settings the service gets, the Role that
grants exactly ``jobs.prepull.rbac.RULES`` on its own DaemonSet and Lease (nothing
cluster-scoped), and the Lease that owns the DaemonSet, so that ``helm uninstall``
removes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from jobs.prepull.keeper import prepull_spec
from jobs.prepull.lease import lease_name
from jobs.prepull.manifests import daemonset_name
from jobs.prepull.rbac import RULES

from . import test_chart_static as static
from .test_chart_static import ALL_VALUES, K8S_VERSION, NAMESPACE, Render, load_as_service, one

render = static.render  # a fixture of the static tests (helm is in conftest.py)

ON = ("--set", "prepull.enabled=true")


def kinds(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["kind"], d["metadata"]["name"]) for d in docs]


def test_prepull_is_off_by_default_and_renders_nothing(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render()
    assert not [k for k in kinds(docs) if "prepull" in k[1]]
    assert "prepull" not in static.settings_of(docs)
    assert load_as_service(docs, tmp_path, monkeypatch).prepull.enabled is False


def test_the_service_gets_the_values_and_idles_its_pods_in_its_own_image(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render("-f", str(ALL_VALUES))
    prepull = load_as_service(docs, tmp_path, monkeypatch).prepull
    assert prepull.enabled
    assert prepull.node_selector == {
        "hub.jupyter.org/node-purpose": "user",
        "topology.kubernetes.io/zone": "z1",
    }
    assert prepull.tolerations == [
        {"key": "dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    ]
    # the chart's own pull Secret (for the idle container's image) is added, once
    assert prepull.image_pull_secrets == ["image-pull-secret", "pull-secret"]
    assert (prepull.max_nodes_pulling, prepull.max_images, prepull.interval) == (3, 10, 30)
    assert prepull.pause_image == static.service_container(docs)["image"]
    assert prepull.pause_command == ["sleep", "infinity"]


def test_the_defaults_select_z2jh_user_nodes_and_null_selects_every_node(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepull = load_as_service(render(*ON), tmp_path, monkeypatch).prepull
    assert prepull.node_selector == {"hub.jupyter.org/node-purpose": "user"}
    assert {t["key"] for t in prepull.tolerations} == {
        "hub.jupyter.org/dedicated",
        "hub.jupyter.org_dedicated",
    }
    assert prepull.image_pull_secrets == []
    every = render(*ON, "--set", "prepull.nodeSelector=null")
    assert load_as_service(every, tmp_path, monkeypatch).prepull.node_selector == {}


def test_the_role_grants_exactly_prepulls_rules_on_its_own_objects(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(*ON)
    settings = load_as_service(docs, tmp_path, monkeypatch)
    spec = prepull_spec(settings, NAMESPACE)
    own = {"daemonsets": daemonset_name(spec), "leases": lease_name(settings.kubernetes.instance)}
    assert own == {"daemonsets": "rel-binderhub-service-prepull", "leases": own["daemonsets"]}
    role = one(docs, "Role", "rel-binderhub-service-prepull")
    assert role["rules"] == static.named(RULES, own)
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    binding = one(docs, "RoleBinding", "rel-binderhub-service-prepull")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-binderhub-service", "namespace": NAMESPACE}
    ]
    # the Lease the keeper holds, made by the chart: it owns the DaemonSet
    lease = one(docs, "Lease", own["leases"])
    assert lease["spec"] == {}
    for doc in (role, binding, lease):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # without rbac.create, the Lease stays and no Role is made
    bare = render(*ON, "--set", "rbac.create=false")
    assert one(bare, "Lease", own["leases"])
    assert not [d for d in bare if d["kind"] == "Role"]


def test_prepull_namespace_puts_the_daemonsets_objects_in_the_hubs_namespace(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DaemonSet runs where z2jh's pull Secret is (the hub's namespace): its Lease,
    Role and RoleBinding are made there, for the service's account of the release's."""
    docs = render(*ON, "--set", "prepull.namespace=jhub")
    assert load_as_service(docs, tmp_path, monkeypatch).prepull.namespace == "jhub"
    name = "rel-binderhub-service-prepull"
    for kind in ("Lease", "Role", "RoleBinding"):
        assert one(docs, kind, name)["metadata"]["namespace"] == "jhub"
    assert one(docs, "RoleBinding", name)["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-binderhub-service", "namespace": NAMESPACE}
    ]
    # without it, the release's namespace
    default = render(*ON)
    assert load_as_service(default, tmp_path, monkeypatch).prepull.namespace == NAMESPACE
    assert one(default, "Lease", name)["metadata"]["namespace"] == NAMESPACE
