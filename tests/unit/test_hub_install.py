"""The test hub's objects (tests/cluster/hub_install.py), pure: valid Kubernetes, set up from
z2jh values as z2jh documents them, and every option it does not implement refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from testkit import z2jh
from tests.cluster import hub_install
from tests.cluster.walkthrough import hub_values

IMAGE = "local/bhs-test-hub:abc"
TOKENS = {"hub-service": "s" * 64, "e2e": "e" * 64, "webhook": "w" * 64}


def walkthrough_objects() -> list[dict[str, Any]]:
    values = hub_values(
        "10.244.0.1:5999/jupyter-singleuser:abc",
        "10.244.0.1:5999",
        ("builder", "pw"),
        TOKENS,
        "homes",
    )
    return hub_install.hub_objects(values, image=IMAGE, release="jhub", proxy_token="p" * 64)


def of_kind(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_every_object_is_valid_kubernetes() -> None:
    objects = walkthrough_objects()
    for obj in objects:
        kubernetes_validate.validate(obj, "1.34.0", strict=True)
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "Deployment", "NetworkPolicy", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
    ]  # fmt: skip


def test_the_walkthroughs_values_reach_the_hub_as_z2jh_documents_them() -> None:
    objects = walkthrough_objects()
    values = yaml.safe_load(of_kind(objects, "Secret", "hub")["stringData"]["values.yaml"])
    binder = values["hub"]["services"]["binder"]
    assert binder["url"] == "http://binderhub-service.binder.svc.cluster.local"
    assert binder["apiToken"] == TOKENS["hub-service"]
    assert values["hub"]["loadRoles"]["user"]["scopes"] == [
        "self",
        "access:services!service=binder",
    ]
    snippet = (
        hub_install.HUB_DIR.parents[2] / "chart" / "files" / "hub-extra-config.py"
    ).read_text()
    assert values["hub"]["extraConfig"] == {"binderhub-service": snippet}
    # defaults filled in: user pods reach the hub (their access label)
    assert values["singleuser"]["extraLabels"] == {f"{z2jh.ACCESS}hub": "true"}
    assert values["singleuser"]["storage"]["static"]["subPath"] == "{username}"
    # the image pull secret the hub's user pods name
    pull = of_kind(objects, "Secret", "image-pull-secret")
    config = json.loads(pull["stringData"][".dockerconfigjson"])
    auth = config["auths"]["10.244.0.1:5999"]["auth"]
    assert base64.b64decode(auth).decode() == "builder:pw"
    # the policies of the walkthrough: labelled pods of other namespaces reach the hub
    hub_policy = of_kind(objects, "NetworkPolicy", "hub")
    peers = [peer for rule in hub_policy["spec"]["ingress"] for peer in rule.get("from", [])]
    assert {"namespaceSelector": {"matchLabels": {f"{z2jh.ACCESS}hub": "true"}}} in peers


def test_hub_and_proxy_carry_z2jh_labels_ports_and_names() -> None:
    objects = walkthrough_objects()
    hub = of_kind(objects, "Deployment", "hub")["spec"]["template"]
    assert hub["metadata"]["labels"] == {
        **z2jh.match_labels("hub", "jhub"),
        **z2jh.POD_ACCESS_LABELS["hub"],
    }
    (port,) = hub["spec"]["containers"][0]["ports"]
    assert port == {"name": "http", "containerPort": 8081}
    public = of_kind(objects, "Service", "proxy-public")["spec"]
    assert public["type"] == "ClusterIP"  # the test environment's value
    assert public["ports"][0]["name"] == "http"
    assert of_kind(objects, "Service", "hub")["spec"]["ports"][0]["port"] == 8081


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prePuller": {"hook": {"enabled": False}}}, "prePuller.hook.enabled"),
        ({"hub": {"db": {"type": "sqlite-memory"}, "cookieSecret": "x"}}, "hub.cookieSecret"),
        ({"singleuser": {"storage": {"type": "static"}}}, "hub.db.type sqlite-pvc"),
        (
            {
                "hub": {"db": {"type": "sqlite-memory"}},
                "singleuser": {"storage": {"capacity": "1Gi"}},
            },
            "singleuser.storage.capacity",
        ),
        ({"hub": {"db": {"type": "sqlite-memory"}}}, "singleuser.storage.type dynamic"),
    ],
    ids=["option", "hub-option", "db-default", "storage-option", "storage-default"],
)
def test_what_the_test_hub_does_not_implement_is_refused(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(hub_install.UnsupportedOption, match=message):
        hub_install.hub_objects(values, image=IMAGE, release="r", proxy_token="t")


def test_what_the_test_hub_implements_is_documented_z2jh() -> None:
    known = [tuple(o.split(".")) for o in z2jh.OPTIONS]
    assert [o for o in hub_install.IMPLEMENTED if tuple(o.split(".")) not in known] == []
