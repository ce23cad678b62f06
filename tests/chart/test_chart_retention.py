"""The chart's registry retention (issue 26): a CronJob that runs ``binderhub-service
retention`` with the service's image, settings and credentials, a Role in each namespace
whose pods' images are in use, and a NetworkPolicy. The cluster test runs it
(tests/cluster/test_retention_chart.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobs.settings import ConfigError

from . import test_chart_static as static
from .test_chart_static import (
    ALL_VALUES,
    CHART,
    NAMESPACE,
    SERVICE,
    Render,
    load_as_service,
    one,
    run_helm,
    service_container,
)

render = static.render  # a fixture of the static tests (helm is in conftest.py)
RETENTION = f"{SERVICE}-retention"


def of_retention(docs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted(
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        for d in docs
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "retention"
    )


def pod_of(docs: list[dict[str, Any]], name: str = RETENTION) -> dict[str, Any]:
    cronjob = one(docs, "CronJob", name)
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def test_retention_is_off_by_default(render: Render) -> None:
    assert of_retention(render()) == []


def test_the_cronjob_runs_the_command_once_at_a_time_with_its_own_account(
    render: Render,
) -> None:
    docs = render("--set", "retention.enabled=true")
    assert of_retention(docs) == [
        ("CronJob", "", RETENTION),
        ("NetworkPolicy", "", RETENTION),
        ("Role", NAMESPACE, RETENTION),
        ("RoleBinding", NAMESPACE, RETENTION),
        ("ServiceAccount", "", RETENTION),
    ]
    cronjob = one(docs, "CronJob", RETENTION)
    assert cronjob["spec"]["schedule"] == "17 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_of(docs)
    (container,) = pod["containers"]
    assert container["args"] == [
        "binderhub-service",
        "retention",
        "--config",
        "/etc/binderhub-service/config.yaml",
    ]
    assert container["image"] == service_container(docs)["image"]
    assert pod["serviceAccountName"] == RETENTION
    assert pod["restartPolicy"] == "Never"
    dry = pod_of(render("--set", "retention.enabled=true", "--set", "retention.dryRun=true"))
    assert dry["containers"][0]["args"][-1] == "--dry-run"


def test_the_role_lists_pods_in_the_hubs_namespaces_only(render: Render) -> None:
    docs = render("-f", str(ALL_VALUES))
    roles = [
        d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-retention")
    ]
    assert [r["metadata"]["namespace"] for r in roles] == ["hub", "hub-staging"]
    for role in roles:
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    bindings = [
        d
        for d in docs
        if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-retention")
    ]
    assert [b["metadata"]["namespace"] for b in bindings] == ["hub", "hub-staging"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "everything-retention", "namespace": NAMESPACE}
        ]
        assert binding["roleRef"]["name"] == "everything-retention"
    # no Role, and no token, when nothing is read from the cluster
    docs = render("--set", "retention.enabled=true", "--set", "retention.inUse=none")
    assert [k for k, _, _ in of_retention(docs)] == ["CronJob", "NetworkPolicy", "ServiceAccount"]
    assert pod_of(docs)["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount", RETENTION)["automountServiceAccountToken"] is False


def test_the_cronjob_reads_the_services_settings_and_credentials(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render("-f", str(ALL_VALUES))
    pod = pod_of(docs, "everything-retention")
    (container,) = pod["containers"]
    service = service_container(docs)
    # the service's settings (the same ConfigMap, its Secret's settings and the database
    # URL as the same variables), its registry credentials and its CA bundle
    service_env = {e["name"]: e for e in service["env"]}
    for item in container["env"]:
        if item["name"] != "HOME":
            assert service_env[item["name"]] == item
    assert "BINDERHUB_SERVICE_JUPYTERHUB" in service_env
    assert {e["name"] for e in container["env"]} >= {"BINDERHUB_SERVICE_JUPYTERHUB", "HTTPS_PROXY"}
    # the webhook secrets are not its business
    assert "BINDERHUB_SERVICE_WEBHOOKS__GITHUB_SECRET" not in {e["name"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    service_mounts = {m["name"]: m["mountPath"] for m in service["volumeMounts"]}
    for name in ("config", "secret", "ca", "state"):
        assert mounts[name] == service_mounts[name]
    volumes = {v["name"]: v for v in pod["volumes"]}
    deployment = one(docs, "Deployment", "everything")["spec"]["template"]["spec"]
    service_volumes = {v["name"]: v for v in deployment["volumes"]}
    for name in ("config", "secret", "ca", "state"):
        assert volumes[name] == service_volumes[name]
    assert pod["imagePullSecrets"] == deployment["imagePullSecrets"]
    # the policy's values reach the settings both read
    settings = load_as_service(docs, tmp_path, monkeypatch)
    r = settings.retention
    assert (r.keep_per_ref, r.keep_days, r.in_use, r.guard_timeout) == (5, 14, "kubernetes", 10)
    assert r.in_use_namespaces == ["hub", "hub-staging"]
    cronjob = one(docs, "CronJob", "everything-retention")
    assert cronjob["spec"]["schedule"] == "*/30 * * * *"
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600
    assert container["args"][-1] == "--dry-run"
    assert container["resources"] == {"limits": {"memory": "256Mi"}}


def test_by_default_the_hubs_namespace_is_the_releases(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_as_service(render(), tmp_path, monkeypatch)
    assert settings.retention.in_use_namespaces == [NAMESPACE]
    assert settings.retention.keep_per_ref == 3


def test_the_pod_keeps_to_pod_security_restricted(render: Render) -> None:
    for args, name in (
        (("--set", "retention.enabled=true"), RETENTION),
        (("-f", str(ALL_VALUES)), "everything-retention"),
    ):
        pod = pod_of(render(*args), name)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "hostNetwork" not in pod
        assert "hostPID" not in pod
        assert all(set(v) & {"hostPath"} == set() for v in pod["volumes"])
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]},
            }
            assert "ports" not in container


def test_the_state_file_is_read_beside_the_service_pod(render: Render, helm: str) -> None:
    # the claim is ReadWriteOnce: the run's pod goes to the service pod's node
    docs = render("-f", str(ALL_VALUES))
    affinity = pod_of(docs, "everything-retention")["affinity"]
    deployment = one(docs, "Deployment", "everything")
    assert (
        affinity["nodeAffinity"]
        == deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    )
    (term,) = affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # with a database, no claim and no affinity
    docs = render(
        "--set", "retention.enabled=true", "--set", "database.existingSecret=db",
    )  # fmt: skip
    pod = pod_of(docs)
    assert "affinity" not in pod
    assert all(v["name"] != "state" for v in pod["volumes"])
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["BINDERHUB_SERVICE_DATABASE__URL"]["valueFrom"]["secretKeyRef"]["name"] == "db"
    # the state in the service pod's emptyDir cannot be read: refused, naming the way out
    result = run_helm(
        helm, "template", "rel", str(CHART),
        "--set", "retention.enabled=true", "--set", "persistence.enabled=false",
    )  # fmt: skip
    assert result.returncode != 0
    assert "retention.enabled needs the service's records" in result.stderr
    assert "database.existingSecret" in result.stderr


def test_nobody_may_connect_to_a_retention_pod(render: Render) -> None:
    docs = render("--set", "retention.enabled=true")
    policy = one(docs, "NetworkPolicy", RETENTION)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == []
    cronjob = one(docs, "CronJob", RETENTION)
    labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == labels
    # the service's own policy does not select it (it admits the service's port)
    service_policy = one(docs, "NetworkPolicy", SERVICE)
    assert service_policy["spec"]["podSelector"]["matchLabels"] != labels
    off = render("--set", "retention.enabled=true", "--set", "networkPolicy.enabled=false")
    assert [k for k, _, _ in of_retention(off) if k == "NetworkPolicy"] == []


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("--set", "retention.keepPerRef=0"), "retention/keepPerRef"),
        (("--set", "retention.keepDays=0"), "retention/keepDays"),
        (("--set", "retention.inUse=nowhere"), "retention/inUse"),
        (("--set", "retention.schedule="), "retention/schedule"),
        (("--set", "retention.keepForever=true"), "keepForever"),
    ],
)
def test_the_schema_refuses_a_policy_that_keeps_nothing_and_other_mistakes(
    helm: str, args: tuple[str, ...], path: str
) -> None:
    result = run_helm(helm, "template", "rel", str(CHART), *args)
    assert result.returncode != 0
    assert path in result.stderr, result.stderr


def test_keep_days_shorter_than_the_registry_cache_is_refused_by_the_service(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the schema cannot compare two values; the service's settings do, at start
    docs = render(
        "--set", "retention.enabled=true", "--set-json", "retention.keepDays=0.001",
        "--set", "config.registry.cache_seconds=3600",
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"retention\.keep_days"):
        load_as_service(docs, tmp_path, monkeypatch)
