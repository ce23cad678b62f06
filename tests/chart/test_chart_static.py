"""The Helm chart, rendered without a cluster: lint, schema, Kubernetes validation, yamllint,
and the settings it hands the service (loaded with the service's own settings loader)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from jobs.executors.kubernetes import manifests
from jobs.executors.kubernetes.rbac import RULES
from jobs.registry.auth import make_docker_config
from jobs.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "chart"
HERE = Path(__file__).resolve().parent
ALL_VALUES = HERE / "all-values.yaml"
K8S_VERSION = "1.34.0"
NAMESPACE = "bhs-ns"
SERVICE = "rel-binderhub-service"
"""The service's own objects in a render of release ``rel`` (the Deployment, the Secret):
the default builder, BuildKit, brings a Deployment and Secrets of its own."""

Render = Callable[..., list[dict[str, Any]]]
RELEASED = HERE / "released-values.yaml"
"""What a release writes into the chart's values: every command on ``chart/`` here takes
it first (``run_helm``), so the tests see the chart as operators install it. The chart
without it refuses to render (test_release_chart.py)."""


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    """helm with ``args``, the released values added right after the chart (so that the
    test's own values and ``--set`` win)."""
    at = [i + 1 for i, arg in enumerate(args) if Path(arg).resolve() == CHART]
    if at:
        args = (*args[: at[0]], "--values", str(RELEASED), *args[at[0] :])
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def template_text(helm: str, *args: str, release: str = "rel") -> str:
    result = run_helm(helm, "template", release, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    def _render(*args: str, release: str = "rel") -> list[dict[str, Any]]:
        text = template_text(helm, *args, release=release)
        return [doc for doc in yaml.safe_load_all(text) if doc]

    return _render


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, [(d["kind"], d["metadata"]["name"]) for d in docs]
    return found[0]


def config_text(docs: list[dict[str, Any]]) -> str:
    """The settings file in the service's ConfigMap."""
    (text,) = [
        d["data"]["config.yaml"]
        for d in docs
        if d["kind"] == "ConfigMap" and "config.yaml" in (d.get("data") or {})
    ]
    return str(text)


def settings_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(config_text(docs))
    return data


def service_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "service"
    ]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


VARIANTS = {"default": (), "all-values": ("-f", str(ALL_VALUES))}


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict(helm: str, variant: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *VARIANTS[variant])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_document_is_valid_kubernetes(render: Render, variant: str) -> None:
    docs = render(*VARIANTS[variant])
    unchecked = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked.append(doc["kind"])
    # only the Prometheus operator's CRD has no schema in kubernetes-validate
    assert unchecked == (["ServiceMonitor"] if variant == "all-values" else [])
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"} <= kinds
    assert {"ConfigMap", "Secret"} <= kinds


def test_a_document_with_an_unknown_field_fails_validation(render: Render) -> None:
    # the validator itself is strict, so the test above can fail
    doc = one(render(), "Deployment", SERVICE)
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def yamllint_problems(text: str) -> list[str]:
    conf = YamlLintConfig(file=str(HERE / "yamllint.yaml"))
    return [f"{p.line}:{p.column} {p.level} {p.message}" for p in linter.run(text, conf)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_manifests_pass_yamllint(helm: str, variant: str) -> None:
    text = template_text(helm, *VARIANTS[variant])
    assert yamllint_problems(text) == []


def test_values_files_pass_yamllint() -> None:
    for path in (CHART / "values.yaml", CHART / "Chart.yaml", ALL_VALUES):
        assert yamllint_problems(path.read_text()) == [], path


def test_yamllint_reports_problems() -> None:
    assert yamllint_problems("a:\n   b: 1\n  c: 2\n")


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("--set", "replica=2"), "replica"),
        (("--set", "builder.tpye=dind"), "tpye"),
        (("--set", "secrets.githubWebhookSecrett=x"), "githubWebhookSecrett"),
        (("--set", "builder.dind.storage.typ=hostPath"), "typ"),
    ],
)
def test_schema_rejects_a_misspelt_key(helm: str, args: tuple[str, ...], key: str) -> None:
    result = run_helm(helm, "template", "rel", str(CHART), *args)
    assert result.returncode != 0
    assert f"additional properties '{key}' not allowed" in result.stderr


def test_schema_rejects_a_wrong_value(helm: str) -> None:
    result = run_helm(helm, "template", "rel", str(CHART), "--set", "builder.type=podman")
    assert result.returncode != 0
    assert "builder/type" in result.stderr


def named(rules: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """``rules`` with each resource of ``names`` limited to that name, except ``create``
    (Kubernetes cannot limit it by name: the object does not exist yet)."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        (resource,) = rule["resources"]
        if resource not in names:
            out.append(rule)
            continue
        verbs = [v for v in rule["verbs"] if v != "create"]
        if "create" in rule["verbs"]:
            out.append({**rule, "verbs": ["create"]})
        out.append({**rule, "resourceNames": [names[resource]], "verbs": verbs})
    return out


def test_role_grants_exactly_the_executors_rules_on_its_own_objects(render: Render) -> None:
    docs = render()
    role = one(docs, "Role")
    settings = Settings(**settings_of(docs))
    own = {
        "configmaps": manifests.config_map_name(settings),
        "leases": manifests.lease_name(settings),
    }
    assert own == {
        "configmaps": "rel-binderhub-service-repo2docker",
        "leases": "rel-binderhub-service-queue",
    }
    assert role["rules"] == named(RULES, own)
    # the names are the objects' the chart makes
    assert one(docs, "ConfigMap", own["configmaps"])
    assert one(docs, "Lease", own["leases"])
    binding = one(render(), "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-binderhub-service", "namespace": NAMESPACE}
    ]


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The service container's environment, with values from the rendered Secret."""
    secrets = {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        for d in docs
        if d["kind"] == "Secret"
    }
    env = {}
    for item in service_container(docs)["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def write_test_ca(path: Path) -> Path:
    """A self-signed CA certificate (PEM) at ``path``."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=chart test CA", "-keyout", "/dev/null",
         "-out", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return path


def load_as_service(
    docs: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The settings the service would start with: the ConfigMap's file plus the env. A
    ``ca_bundle`` (the CA ConfigMap's mount) is a test certificate's file here."""
    path = tmp_path / "config.yaml"
    data = yaml.safe_load(config_text(docs))
    if "ca_bundle" in data:
        data["ca_bundle"] = str(write_test_ca(tmp_path / "ca.crt"))
    path.write_text(yaml.safe_dump(data))
    for name, value in env_of(docs).items():
        if name.startswith("BINDERHUB_SERVICE_"):
            monkeypatch.setenv(name, value)
    return load_settings(path)


def test_default_settings_are_accepted_by_the_service(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_as_service(render(), tmp_path, monkeypatch)
    assert settings.executor == "kubernetes"
    assert settings.listen == "0.0.0.0:8080"
    assert str(settings.state_path) == "/var/lib/binderhub-service/state.sqlite"
    k8s = settings.kubernetes
    assert k8s.namespace == NAMESPACE
    assert k8s.instance == "rel-binderhub-service"
    assert k8s.service_account == "rel-binderhub-service-build"
    # the default builder needs no Docker on the nodes (issue #14): this release's BuildKit
    assert k8s.builder == "buildkit"
    assert k8s.builder_image == "registry.example.org/binderhub-service-builder:0.1.0.dev0"
    assert k8s.buildkit_host == f"tcp://rel-binderhub-service-buildkit.{NAMESPACE}.svc:1234"
    assert k8s.buildkit_tls_secret == "rel-binderhub-service-buildkit-client"
    assert k8s.docker_config_secret is None
    assert settings.webhooks.github_secret is None


def test_every_option_reaches_the_service(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render("-f", str(ALL_VALUES))
    s = load_as_service(docs, tmp_path, monkeypatch)
    assert s.listen == "0.0.0.0:8081"
    assert s.public_url == "https://binder.example.org/"
    assert s.image_prefix == "registry.example.org/binder-"
    assert s.registry.url == "https://registry.example.org"
    assert s.registry.username == "pusher"
    # the password reaches the service in the docker config.json the pods push with
    assert s.registry.password is None
    assert str(s.registry.docker_config) == "/etc/binderhub-service-secret/docker-config.json"
    assert s.allowed_repos == ["https://github.com/my-org/*"]
    assert [(r.url, r.branches, r.tags) for r in s.repos] == [
        ("https://github.com/my-org/my-repo", ["main", "release-*"], [])
    ]
    token_hash = hashlib.sha256(b"0123456789abcdef0123456789abcdef").hexdigest()
    assert [(t.name, t.sha256, t.scopes) for t in s.auth.tokens] == [
        ("hub", token_hash, ["builds:read", "builds:write"]),
        (
            "reader",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ["builds:read"],
        ),
    ]
    assert s.auth.open_read is True
    assert s.webhooks.reconcile_interval == 300
    assert s.webhooks.github_secret is not None
    assert s.webhooks.github_secret.get_secret_value() == "github-secret"
    assert s.webhooks.gitlab_token is not None
    assert s.webhooks.gitlab_token.get_secret_value() == "gitlab-token"
    assert (
        s.limits.max_concurrent_builds,
        s.limits.max_concurrent_builds_per_repo,
        s.limits.build_timeout,
    ) == (4, 2, 1800)
    assert s.quotas.per_user.model_dump() == {
        "builds_per_window": 20,
        "window": 604800,
        "max_queued": 2,
    }
    assert (s.quotas.per_repo.builds_per_window, s.quotas.per_repo.max_queued) == (0, 5)
    assert (s.log_level, s.log_format) == ("debug", "text")
    assert s.ref_cache_seconds == 60  # from config, the escape hatch
    # secrets.settings arrive as JSON env vars, merged over the file
    api_token = s.jupyterhub.api_token
    assert api_token is not None
    assert api_token.get_secret_value() == "hub-token-for-this-service"
    k8s = s.kubernetes
    assert k8s.unschedulable_timeout == 120  # config merged into the chart's section
    assert k8s.instance == "everything"
    assert k8s.builder_image == "registry.example.org/repo2docker:2024.07.0"
    assert k8s.service_account == "bhs-builds"
    assert k8s.docker_socket == f"/var/run/dind/{NAMESPACE}-rel/docker.sock"
    assert k8s.node_selector == {"example.org/builds": "true"}
    assert k8s.tolerations[0]["key"] == "builds"
    assert k8s.affinity["nodeAffinity"]
    assert k8s.resources == {"limits": {"memory": "4Gi"}}
    assert k8s.priority_class_name == "builds"
    assert k8s.ttl_seconds_after_finished == 600
    assert k8s.docker_config_secret is not None
    assert (k8s.docker_config_secret.name, k8s.docker_config_secret.key) == (
        "everything",
        "docker-config.json",
    )
    # git credentials are the service's forge settings; build pods get theirs from it
    (credential,) = s.forges.credentials
    assert credential.url == "https://git.example.org/org"
    assert credential.password.get_secret_value() == "git-token-for-builds"
    secret = one(docs, "Secret", "everything")
    assert "git-credentials" not in secret["data"]
    assert json.loads(base64.b64decode(secret["data"]["docker-config.json"])) == (
        make_docker_config("registry.example.org", "pusher", "registry-password")
    )
    assert "registry-password" not in secret["data"]
    # no secret value is in the ConfigMap
    text = config_text(docs)
    for secret_value in (
        "github-secret",
        "gitlab-token",
        "registry-password",
        "hub-token",
        "git-token-for-builds",
    ):
        assert secret_value not in text
    assert "0123456789abcdef0123456789abcdef" not in json.dumps(docs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_executors_own_objects_belong_to_the_release(
    render: Render, variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # made by the chart so that helm uninstall removes them; the service fills them in
    docs = render(*VARIANTS[variant])
    settings = load_as_service(docs, tmp_path, monkeypatch)
    config_map = one(docs, "ConfigMap", manifests.config_map_name(settings))
    # the very content the service writes, or it would rewrite the chart's ConfigMap
    assert config_map["data"] == manifests.make_config_map(settings, NAMESPACE)["data"]
    lease = one(docs, "Lease", manifests.lease_name(settings))
    assert lease["spec"] == {}
    if variant == "all-values":
        # the builds' NetworkPolicy selects exactly the executor's build pods
        policy = one(docs, "NetworkPolicy", f"{settings.kubernetes.instance}-build")
        assert policy["spec"]["podSelector"]["matchLabels"] == manifests.selector_labels(settings)


def test_the_service_pod_is_locked_down(render: Render) -> None:
    docs = render("-f", str(ALL_VALUES))
    pod = one(docs, "Deployment", "everything")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    # liveness checks no dependency (an outside fault must not restart the pod);
    # readiness, that the pod answers (shared dependencies are only reported)
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["imagePullSecrets"] == [{"name": "pull-secret"}]
    assert pod["priorityClassName"] == "high"
    assert pod["hostNetwork"] is True
    assert {"name": "extra", "mountPath": "/extra"} in container["volumeMounts"]
    assert {"name": "extra", "emptyDir": {}} in pod["volumes"]
    assert {"name": "BINDERHUB_SERVICE_LOG_LEVEL", "value": "debug"} in container["env"]
    assert container["resources"]["limits"] == {"memory": "512Mi"}
    state = next(v for v in pod["volumes"] if v["name"] == "state")
    assert state == {"name": "state", "persistentVolumeClaim": {"claimName": "everything"}}
    # the build pods' account has no token
    builds_sa = one(docs, "ServiceAccount", "bhs-builds")
    assert builds_sa["automountServiceAccountToken"] is False


def test_config_changes_roll_the_pods(render: Render) -> None:
    def checksums(*args: str) -> dict[str, str]:
        meta = one(render(*args), "Deployment", SERVICE)["spec"]["template"]["metadata"]
        return {k: v for k, v in meta["annotations"].items() if k.startswith("checksum/")}

    base = checksums()
    assert base == checksums()
    changed = checksums("--set", "logLevel=debug")
    assert changed["checksum/config"] != base["checksum/config"]
    assert changed["checksum/secret"] == base["checksum/secret"]
    secret_changed = checksums("--set", "secrets.githubWebhookSecret=new")
    assert secret_changed["checksum/secret"] != base["checksum/secret"]


def test_existing_secret_replaces_the_charts_secret(render: Render, helm: str) -> None:
    docs = render(
        "--set",
        "secrets.existingSecret=mine",
        "--set",
        "secrets.existingSecretKeys={github-webhook-secret,docker-config.json,"
        "settings.jupyterhub.json}",
        "--set",
        "secrets.gitlabWebhookToken=ignored",
    )
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == SERVICE]
    env = {e["name"]: e for e in service_container(docs)["env"]}
    assert env["BINDERHUB_SERVICE_WEBHOOKS__GITHUB_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "mine",
        "key": "github-webhook-secret",
    }
    assert env["BINDERHUB_SERVICE_JUPYTERHUB"]["valueFrom"]["secretKeyRef"] == {
        "name": "mine",
        "key": "settings.jupyterhub.json",
    }
    assert "BINDERHUB_SERVICE_WEBHOOKS__GITLAB_TOKEN" not in env
    assert settings_of(docs)["kubernetes"]["docker_config_secret"] == {
        "name": "mine",
        "key": "docker-config.json",
    }
    assert "git_credentials_secret" not in settings_of(docs)["kubernetes"]
    result = run_helm(
        helm,
        "template",
        "rel",
        str(CHART),
        "--set",
        "secrets.existingSecret=mine",
        "--set",
        "secrets.existingSecretKeys={registry-passwrd}",
    )
    assert result.returncode != 0
    assert "existingSecretKeys" in result.stderr


def test_git_credentials_for_every_build_pod_are_refused_naming_the_forge_settings(
    helm: str,
) -> None:
    # one unscoped credential in every build pod was handed to whichever host asked
    # (issue 20); build pods now get their repository's from the forge settings
    result = run_helm(
        helm, "template", "rel", str(CHART), "--set", "secrets.gitCredentials=username=bot"
    )
    assert result.returncode != 0
    assert "secrets.gitCredentials was removed" in result.stderr
    assert "secrets.settings.forges" in result.stderr


def test_names_follow_the_release_and_fullname_override(render: Render) -> None:
    docs = render(release="hub-builds")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "hub-builds-binderhub-service") in names
    assert ("ServiceAccount", "hub-builds-binderhub-service-build") in names
    # a release whose name contains the chart's is not doubled
    assert ("Deployment", "binderhub-service") in {
        (d["kind"], d["metadata"]["name"]) for d in render(release="binderhub-service")
    }
    override = render("--set", "fullnameOverride=bhs")
    assert {d["metadata"]["name"] for d in override} == {
        "bhs",
        "bhs-build",
        "bhs-repo2docker",
        "bhs-queue",
        "bhs-buildkit",  # the default builder's daemon: Deployment, Service, ConfigMap
        "bhs-buildkit-server",
        "bhs-buildkit-client",
        "bhs-build-to-buildkit",  # NetworkPolicies are on by default
    }
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "binderhub-service"
        assert labels["app.kubernetes.io/instance"] == "hub-builds"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0.dev0"
        assert labels["helm.sh/chart"] == "binderhub-service-0.1.0"
        assert labels["app.kubernetes.io/component"] in ("service", "build", "buildkit")


def test_dind_sockets_are_per_release_and_builds_follow_the_daemon(render: Render) -> None:
    args = ("--set", "builder.type=dind", "--set", "builder.nodeSelector.builds=yes")
    sockets = []
    for release in ("one", "two"):
        docs = render(*args, release=release)
        daemonset = one(docs, "DaemonSet")
        pod = daemonset["spec"]["template"]["spec"]
        assert pod["containers"][0]["securityContext"] == {"privileged": True}
        host_dir = next(v for v in pod["volumes"] if v["name"] == "socket-dir")["hostPath"]["path"]
        k8s = settings_of(docs)["kubernetes"]
        assert k8s["docker_socket"] == f"{host_dir}/docker.sock"
        # build pods land where this release's daemon runs
        assert pod["nodeSelector"] == k8s["node_selector"] == {"builds": "yes"}
        sockets.append(k8s["docker_socket"])
    assert sockets == [
        f"/var/run/dind/{NAMESPACE}-one/docker.sock",
        f"/var/run/dind/{NAMESPACE}-two/docker.sock",
    ]
    host = render("--set", "builder.nodeSelector.builds=yes")
    assert not [d for d in host if d["kind"] == "DaemonSet"]
    assert settings_of(host)["kubernetes"]["node_selector"] == {"builds": "yes"}


SERVICE = "rel-binderhub-service"


def state_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment", SERVICE)["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "state"]
    return dict(volume)


def test_the_state_is_kept_on_a_claim_by_default(render: Render) -> None:
    docs = render()
    claim = one(docs, "PersistentVolumeClaim")
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert state_volume(docs) == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    # one pod at a time holds the claim (ReadWriteOnce): no rolling overlap
    assert one(docs, "Deployment", SERVICE)["spec"]["strategy"] == {"type": "Recreate"}
    off = render("--set", "persistence.enabled=false")
    assert not [d for d in off if d["kind"] == "PersistentVolumeClaim"]
    assert state_volume(off) == {"name": "state", "emptyDir": {}}


def test_several_replicas_need_a_shared_database(helm: str, render: Render) -> None:
    refused = run_helm(helm, "template", "rel", str(CHART), "--set", "replicas=2")
    assert refused.returncode != 0
    assert "database.url" in refused.stderr
    assert "database.existingSecret" in refused.stderr
    docs = render("--set", "replicas=2", "--set", "database.existingSecret=pg")
    deployment = one(docs, "Deployment", SERVICE)
    assert deployment["spec"]["replicas"] == 2
    assert "strategy" not in deployment["spec"]  # rolling: the database is shared
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert state_volume(docs) == {"name": "state", "emptyDir": {}}
    env = {item["name"]: item for item in service_container(docs)["env"]}
    assert env["BINDERHUB_SERVICE_DATABASE__URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "pg", "key": "database-url"}
    }
    assert "database" not in settings_of(docs)  # the URL is never in the ConfigMap


def notes_of(helm: str, *args: str) -> str:
    result = run_helm(
        helm, "install", "rel", str(CHART), "--dry-run=client", "--namespace", NAMESPACE, *args
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


def hub_values_in(notes: str) -> dict[str, Any]:
    """The z2jh values the notes print: the lines from ``  hub:`` up to the first line that
    is neither indented nor empty."""
    lines = notes.split("\n  hub:\n", 1)[1].splitlines()
    block = ["  hub:"]
    for line in lines:
        if line.strip() and not line.startswith("  "):
            break
        block.append(line)
    parsed = yaml.safe_load(textwrap.dedent("\n".join(block)))
    hub: dict[str, Any] = parsed["hub"]
    return hub


def test_notes_print_webhook_urls_and_the_hub_snippet(helm: str) -> None:
    notes = notes_of(helm, "--set", "publicUrl=https://binder.example.org/")
    assert "https://binder.example.org/hooks/github" in notes
    assert "https://binder.example.org/hooks/gitlab" in notes
    hub = hub_values_in(notes)
    assert hub["services"]["binder"]["url"] == f"http://rel-binderhub-service.{NAMESPACE}.svc:80"
    assert "apiToken" in hub["services"]["binder"]
    snippet = (CHART / "files" / "hub-extra-config.py").read_text()
    assert hub["extraConfig"]["binderhub-service"].strip() == snippet.strip()
    assert hub["networkPolicy"] == {"interNamespaceAccessLabels": "accept"}
    assert "config.base_path is not /services/binder/ yet" in notes


def test_notes_follow_the_settings_public_url_and_service_name(helm: str) -> None:
    notes = notes_of(
        helm,
        "--set",
        "publicUrl=https://old.example.org/",
        "--set",
        "config.public_url=https://hub.example.org/services/builder/",
        "--set",
        "config.base_path=/services/builder/",
        "--set",
        "config.jupyterhub.service_name=builder",
        "--set",
        "hubNetworkAccess=false",
    )
    assert "https://hub.example.org/services/builder/hooks/github" in notes
    assert "old.example.org" not in notes
    assert "config.base_path is not" not in notes
    assert "hubNetworkAccess is false" in notes
    hub = hub_values_in(notes)
    assert list(hub["services"]) == ["builder"]
    assert 'SERVICE = "builder"' in hub["extraConfig"]["binderhub-service"]


def test_values_reference_is_generated_from_the_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(CHART / "values_docs.py"),
            "--check",
            str(ROOT / "docs/helm-values.md"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_values_docs_check_finds_disagreements() -> None:
    sys.path.insert(0, str(CHART))
    try:
        import values_docs
    finally:
        sys.path.remove(str(CHART))
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a": {"type": "string", "description": "A."}, "b": {"type": "string"}},
    }
    assert sorted(values_docs.problems(schema, {"a": "", "b": "", "c": 1})) == [
        "b: no description in the schema",
        "c: in values.yaml, not in the schema",
    ]
    assert values_docs.problems(schema, {"a": "", "b": "", "c": 1}) != []
    schema["properties"]["b"]["description"] = "B."
    assert values_docs.problems(schema, {"a": "", "b": ""}) == []


WALKTHROUGH_CREDENTIALS = (
    "--set",
    "imagePrefix=registry.example.org/binder-",
    "--set",
    "registry.username=builder",
    "--set",
    "secrets.registryPassword=s3cret",
)


def test_the_registry_password_serves_the_check_and_the_pushes(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walkthrough's registry.username + secrets.registryPassword become one docker
    config.json: the service's check reads it, build pods mount it (issue #14)."""
    docs = render(*WALKTHROUGH_CREDENTIALS)
    secret = one(docs, "Secret", SERVICE)
    made = json.loads(base64.b64decode(secret["data"]["docker-config.json"]))
    assert made == make_docker_config("registry.example.org", "builder", "s3cret")
    settings = load_as_service(docs, tmp_path, monkeypatch)
    assert settings.registry.password is None
    docker_config = settings.registry.docker_config
    assert docker_config is not None
    # the service's pod has that very key at the path its settings name
    pod = one(docs, "Deployment", SERVICE)["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "secret"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secret"]
    (item,) = volume["secret"]["items"]
    assert item["key"] == "docker-config.json"
    assert f"{mount['mountPath']}/{item['path']}" == str(docker_config)
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    # and build pods mount it, in a writable $DOCKER_CONFIG
    ref = settings.kubernetes.docker_config_secret
    assert ref is not None
    assert (ref.name, ref.key) == (secret["metadata"]["name"], "docker-config.json")
    assert "s3cret" not in config_text(docs)


def test_docker_hub_credentials_use_the_index_key(render: Render) -> None:
    docs = render(*WALKTHROUGH_CREDENTIALS, "--set", "imagePrefix=docker.io/my-org/binder-")
    made = json.loads(base64.b64decode(one(docs, "Secret", SERVICE)["data"]["docker-config.json"]))
    assert made == make_docker_config("docker.io", "builder", "s3cret")
    assert list(made["auths"]) == ["https://index.docker.io/v1/"]


def test_a_given_docker_config_is_taken_as_it_is(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = '{"auths": {"registry.example.org": {"auth": "cHVzaGVyOnB3"}}}'
    values = tmp_path / "given.yaml"
    values.write_text(yaml.safe_dump({"secrets": {"dockerConfigJson": given}}))
    docs = render("--set", "imagePrefix=registry.example.org/binder-", "-f", str(values))
    assert (
        base64.b64decode(one(docs, "Secret", SERVICE)["data"]["docker-config.json"]).decode()
        == given
    )
    settings = load_as_service(docs, tmp_path, monkeypatch)
    assert settings.kubernetes.docker_config_secret is not None
    assert settings.registry.docker_config is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (*WALKTHROUGH_CREDENTIALS, "--set-json", 'secrets.dockerConfigJson="{}"'),
            "both set",
        ),
        (("--set", "secrets.registryPassword=pw"), "registry.username is not"),
        (
            (
                "--set",
                "secrets.existingSecret=mine",
                "--set",
                "secrets.existingSecretKeys={registry-password}",
            ),
            "docker-config.json",
        ),
    ],
)
def test_credentials_that_builds_would_not_get_are_refused(
    helm: str, args: tuple[str, ...], message: str
) -> None:
    result = run_helm(helm, "template", "rel", str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr
