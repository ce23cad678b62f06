"""The values managed clusters need (issue 23), rendered without a cluster: a proxy and a CA
bundle reaching the BuildKit daemon, the daemon's own settings and a bounded cache, its
certificates from Secrets of the operator's or from cert-manager (two renders the same), a
PodDisruptionBudget with several replicas, the build pods' ServiceAccount with pull secrets
and cloud identity, and the NetworkPolicies, on by default, read by the policy evaluator.
What changes a build is exercised in the cluster too (tests/cluster/test_network_policy.py,
test_managed_clusters.py)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testkit.network_policy import Address, Pod, Port, connection_allowed

from . import test_chart_static as static
from .test_chart_static import CHART, K8S_VERSION, NAMESPACE, Render, one, run_helm, settings_of

render = static.render  # a fixture of the static tests (helm is in conftest.py)

DAEMON = "rel-binderhub-service-buildkit"
BUILD_SA = "rel-binderhub-service-build"
CERT_MANAGER = ("--api-versions", "cert-manager.io/v1")


def pem_certificate(name: str = "Test CA") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def daemon_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment", DAEMON)["spec"]["template"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def values_file(tmp: Path, values: dict[str, Any]) -> str:
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def refused(helm: str, *args: str) -> str:
    """helm's error for a render that must fail; a schema's error names the value as a JSON
    pointer (``/proxy/httpsProxy``), given back here dotted as well."""
    result = run_helm(helm, "template", "rel", str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode != 0, result.stdout
    pointers = [word.strip("':") for word in result.stderr.split() if word.startswith("'/")]
    return result.stderr + "".join(f"\n{p[1:].replace('/', '.')}" for p in pointers)


# -- proxy, CA bundle -------------------------------------------------------------------------


def test_the_proxy_reaches_the_daemon_and_spares_the_cluster(render: Render) -> None:
    docs = render(
        "--set",
        "proxy.httpsProxy=http://proxy.example.org:3128",
        "--set",
        "proxy.httpProxy=http://proxy.example.org:3128",
        "--set",
        "proxy.noProxy=registry.internal\\,10.20.0.0/16",
    )
    (container,) = daemon_pod(docs)["spec"]["containers"]
    env = env_of(container)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        assert env[name] == "http://proxy.example.org:3128"
    assert env["NO_PROXY"] == env["no_proxy"]
    no_proxy = env["NO_PROXY"].split(",")
    for name in ("localhost", "127.0.0.1", ".svc", ".cluster.local", DAEMON):
        assert name in no_proxy
    assert no_proxy[-2:] == ["registry.internal", "10.20.0.0/16"]
    # no proxy: no variable at all
    (plain,) = daemon_pod(render())["spec"]["containers"]
    assert not {"HTTPS_PROXY", "NO_PROXY"} & set(env_of(plain))


@pytest.mark.parametrize(
    "url",
    ["proxy.example.org:3128", "http://user:pw@proxy.example.org:3128", "http://a b", "ftp://x"],
)
def test_a_proxy_url_that_does_not_parse_is_refused_naming_it(helm: str, url: str) -> None:
    assert "proxy.httpsProxy" in refused(helm, "--set-string", f"proxy.httpsProxy={url}")


@pytest.mark.parametrize(
    ("mirror", "named"),
    [
        ({"prefix": "https://github.com", "url": "git-cache.internal/gh"}, "config.mirrors.0.url"),
        ({"prefix": "github.com", "url": "git://git-cache.internal/gh"}, "config.mirrors.0.prefix"),
        ({"prefix": "https://github.com", "url": "https://u:pw@cache/gh"}, "config.mirrors.0.url"),
        ({"prefix": "https://github.com", "url": "https://cache/gh?t=1"}, "config.mirrors.0.url"),
        ({"prefix": "https://github.com", "url": "ftp://cache/gh"}, "config.mirrors.0.url"),
    ],
)  # fmt: skip
def test_a_mirror_that_does_not_parse_is_refused_naming_it(
    helm: str, render: Render, mirror: dict[str, str], named: str
) -> None:
    assert named in refused(helm, "--set-json", f"config.mirrors=[{json.dumps(mirror)}]")
    good = {"prefix": "https://github.com", "url": "git://git-cache.internal/gh"}
    docs = render("--set-json", f"config.mirrors=[{json.dumps(good)}]")
    assert settings_of(docs)["mirrors"] == [good]


def test_the_ca_bundle_is_added_to_what_the_daemon_trusts(render: Render, tmp_path: Path) -> None:
    pem = pem_certificate() + pem_certificate("Second CA")
    docs = render("-f", values_file(tmp_path, {"caBundle": {"pem": pem}}))
    config_map = one(docs, "ConfigMap", "rel-binderhub-service-ca")
    assert config_map["data"]["ca.crt"].strip() == pem.strip()
    pod = daemon_pod(docs)
    (container,) = pod["spec"]["containers"]
    # Go's roots: the image's own directory and the bundle's, added rather than replaced
    assert env_of(container)["SSL_CERT_DIR"] == "/etc/ssl/certs:/etc/binderhub-service-ca"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "ca"]
    assert mount["mountPath"] == "/etc/binderhub-service-ca"
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "ca"]
    assert volume["configMap"] == {
        "name": "rel-binderhub-service-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    # a changed bundle restarts the daemon, which reads it when it starts
    other = render("-f", values_file(tmp_path, {"caBundle": {"pem": pem_certificate()}}))
    assert (
        daemon_pod(other)["metadata"]["annotations"]["checksum/ca"]
        != pod["metadata"]["annotations"]["checksum/ca"]
    )
    # an existing ConfigMap (e.g. trust-manager's) by name and key
    mine = render(
        "--set",
        "caBundle.existingConfigMap=corp-ca",
        "--set",
        "caBundle.existingConfigMapKey=bundle.pem",
    )
    assert not [d for d in mine if d["metadata"]["name"] == "rel-binderhub-service-ca"]
    (volume,) = [v for v in daemon_pod(mine)["spec"]["volumes"] if v["name"] == "ca"]
    assert volume["configMap"]["name"] == "corp-ca"
    assert volume["configMap"]["items"] == [{"key": "bundle.pem", "path": "ca.crt"}]


@pytest.mark.parametrize(
    "pem",
    [
        "not a certificate",
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nnot base64 !\n-----END CERTIFICATE-----\n",
    ],
)
def test_a_ca_bundle_that_is_not_pem_is_refused_naming_it(
    helm: str, tmp_path: Path, pem: str
) -> None:
    assert "caBundle.pem" in refused(helm, "-f", values_file(tmp_path, {"caBundle": {"pem": pem}}))


def test_a_ca_bundle_given_twice_is_refused(helm: str, tmp_path: Path) -> None:
    values = {"caBundle": {"pem": pem_certificate(), "existingConfigMap": "corp-ca"}}
    assert "caBundle.pem and caBundle.existingConfigMap" in refused(
        helm, "-f", values_file(tmp_path, values)
    )


# -- the daemon's settings ----------------------------------------------------------------------


def test_the_daemons_pod_takes_the_operators_settings(render: Render, tmp_path: Path) -> None:
    values = {
        "builder": {
            "buildkit": {
                "securityContext": {"privileged": True, "seccompProfile": {"type": "Unconfined"}},
                "podSecurityContext": {"fsGroup": 1000},
                "resources": {"requests": {"cpu": "2"}},
                "priorityClassName": "builds",
                "podAnnotations": {"example.org/owner": "binder"},
                "extraEnv": [{"name": "BUILDKIT_STEP_LOG_MAX_SIZE", "value": "-1"}],
                "extraVolumes": [{"name": "corp", "secret": {"secretName": "corp-registry-ca"}}],
                "extraVolumeMounts": [{"name": "corp", "mountPath": "/etc/corp"}],
                "nodeSelector": {"pool": "builds"},
            }
        }
    }
    docs = render("-f", values_file(tmp_path, values))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    pod = daemon_pod(docs)
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["securityContext"] == values["builder"]["buildkit"]["securityContext"]
    assert spec["securityContext"] == {"fsGroup": 1000}
    assert container["resources"] == {"requests": {"cpu": "2"}}
    assert spec["priorityClassName"] == "builds"
    assert spec["nodeSelector"] == {"pool": "builds"}
    assert pod["metadata"]["annotations"]["example.org/owner"] == "binder"
    assert {"checksum/config", "checksum/tls"} <= set(pod["metadata"]["annotations"])
    assert env_of(container)["BUILDKIT_STEP_LOG_MAX_SIZE"] == "-1"
    assert {"name": "corp", "mountPath": "/etc/corp"} in container["volumeMounts"]
    assert {"name": "corp", "secret": {"secretName": "corp-registry-ca"}} in spec["volumes"]


def test_the_daemons_cache_is_bounded_by_default(render: Render, helm: str) -> None:
    toml = one(render(), "ConfigMap", DAEMON)["data"]["buildkitd.toml"]
    assert 'maxUsedSpace = "20GB"' in toml
    assert "reservedSpace" not in toml
    toml = one(
        render(
            "--set",
            "builder.buildkit.gc.maxUsedSpace=80%",
            "--set",
            "builder.buildkit.gc.minFreeSpace=10GB",
        ),
        "ConfigMap",
        DAEMON,
    )["data"]["buildkitd.toml"]
    assert 'maxUsedSpace = "80%"' in toml
    assert 'minFreeSpace = "10GB"' in toml
    assert "builder.buildkit.gc.maxUsedSpace" in refused(
        helm, "--set", "builder.buildkit.gc.maxUsedSpace=lots"
    )


# -- the daemon's certificates --------------------------------------------------------------


def test_existing_secrets_give_the_same_render_every_time(helm: str, render: Render) -> None:
    args = (
        "--set",
        "builder.buildkit.tls.existingSecrets.server=bk-server",
        "--set",
        "builder.buildkit.tls.existingSecrets.client=bk-client",
    )
    first = run_helm(helm, "template", "rel", str(CHART), "--namespace", NAMESPACE, *args)
    second = run_helm(helm, "template", "rel", str(CHART), "--namespace", NAMESPACE, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    docs = [d for d in yaml.safe_load_all(first.stdout) if d]
    assert not [d for d in docs if d["kind"] == "Secret" and "buildkit" in d["metadata"]["name"]]
    (tls,) = [v for v in daemon_pod(docs)["spec"]["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "bk-server"
    assert settings_of(docs)["kubernetes"]["buildkit_tls_secret"] == "bk-client"
    # the chart's own certificates differ from render to render (lookup finds nothing)
    default = [run_helm(helm, "template", "rel", str(CHART)).stdout for _ in range(2)]
    assert default[0] != default[1]


def test_existing_secrets_half_given_or_with_cert_manager_are_refused(helm: str) -> None:
    assert "give both server and client" in refused(
        helm, "--set", "builder.buildkit.tls.existingSecrets.server=bk-server"
    )
    assert "choose one" in refused(
        helm,
        *CERT_MANAGER,
        "--set",
        "builder.buildkit.tls.existingSecrets.server=a",
        "--set",
        "builder.buildkit.tls.existingSecrets.client=b",
        "--set",
        "builder.buildkit.tls.certManager.enabled=true",
    )


def test_cert_manager_makes_the_certificates_and_renders_the_same_every_time(helm: str) -> None:
    args = (
        "--namespace",
        NAMESPACE,
        *CERT_MANAGER,
        "--set",
        "builder.buildkit.tls.certManager.enabled=true",
    )
    first = run_helm(helm, "template", "rel", str(CHART), *args)
    second = run_helm(helm, "template", "rel", str(CHART), *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    docs = [d for d in yaml.safe_load_all(first.stdout) if d]
    assert not [d for d in docs if d["kind"] == "Secret" and "buildkit" in d["metadata"]["name"]]
    certificates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Certificate"}
    assert set(certificates) == {f"{DAEMON}-ca", f"{DAEMON}-server", f"{DAEMON}-client"}
    server = certificates[f"{DAEMON}-server"]["spec"]
    assert f"{DAEMON}.{NAMESPACE}.svc" in server["dnsNames"]
    assert server["issuerRef"] == {
        "name": f"{DAEMON}-ca",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert certificates[f"{DAEMON}-ca"]["spec"]["isCA"] is True
    issuers = {d["metadata"]["name"] for d in docs if d["kind"] == "Issuer"}
    assert issuers == {f"{DAEMON}-selfsigned", f"{DAEMON}-ca"}
    # cert-manager's key names, mapped to the daemon's files
    (tls,) = [v for v in daemon_pod(docs)["spec"]["volumes"] if v["name"] == "tls"]
    assert tls["secret"] == {
        "secretName": f"{DAEMON}-server",
        "items": [
            {"key": "ca.crt", "path": "ca.pem"},
            {"key": "tls.crt", "path": "cert.pem"},
            {"key": "tls.key", "path": "key.pem"},
        ],
    }
    # an issuer of the operator's: no CA of the release
    theirs = run_helm(
        helm,
        "template",
        "rel",
        str(CHART),
        *args,
        "--set-json",
        'builder.buildkit.tls.certManager.issuerRef={"name":"corp","kind":"ClusterIssuer"}',
    )
    assert theirs.returncode == 0, theirs.stderr
    docs = [d for d in yaml.safe_load_all(theirs.stdout) if d]
    assert not [d for d in docs if d["kind"] == "Issuer"]
    for cert in (d for d in docs if d["kind"] == "Certificate"):
        assert cert["spec"]["issuerRef"] == {"name": "corp", "kind": "ClusterIssuer"}


def test_cert_manager_without_its_api_is_refused_naming_it(helm: str) -> None:
    assert "cert-manager.io/v1" in refused(
        helm, "--set", "builder.buildkit.tls.certManager.enabled=true"
    )


# -- replicas, ServiceAccounts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), False),
        (("--set", "replicas=3", "--set", "database.existingSecret=db"), True),
        (
            (
                "--set",
                "replicas=3",
                "--set",
                "database.existingSecret=db",
                "--set",
                "podDisruptionBudget.enabled=false",
            ),
            False,
        ),
        (("--set", "podDisruptionBudget.enabled=true"), True),
    ],
    ids=["one-replica", "replicas", "replicas-off", "asked-for"],
)
def test_a_disruption_budget_comes_with_several_replicas(
    render: Render, args: tuple[str, ...], expected: bool
) -> None:
    budgets = [d for d in render(*args) if d["kind"] == "PodDisruptionBudget"]
    assert bool(budgets) is expected
    for budget in budgets:
        assert budget["spec"]["maxUnavailable"] == 1


def test_the_build_pods_account_carries_pull_secrets_and_cloud_identity(
    render: Render, helm: str
) -> None:
    docs = render(
        "--set-json",
        'builder.imagePullSecrets=[{"name":"ghcr"}]',
        "--set",
        "builder.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/push",
    )
    account = one(docs, "ServiceAccount", BUILD_SA)
    assert account["imagePullSecrets"] == [{"name": "ghcr"}]
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/push"
    }
    assert account["automountServiceAccountToken"] is False
    assert settings_of(docs)["kubernetes"]["service_account"] == BUILD_SA
    # the service's own account (which never pushes) is not given them
    service_account = one(docs, "ServiceAccount", "rel-binderhub-service")
    assert "annotations" not in service_account["metadata"]
    assert "builder.serviceAccount.create" in refused(
        helm,
        "--set-json",
        'builder.imagePullSecrets=[{"name":"ghcr"}]',
        "--set",
        "builder.serviceAccount.create=false",
        "--set",
        "builder.serviceAccount.name=mine",
    )


# -- NetworkPolicies ----------------------------------------------------------------------------

BUILD = Pod(
    NAMESPACE,
    {
        "app.kubernetes.io/managed-by": "binderhub-service",
        "app.kubernetes.io/instance": "rel-binderhub-service",
        "app.kubernetes.io/component": "build",
    },
    ip="10.244.1.20",
)
HUB = Pod("jhub", {"component": "hub"}, ip="10.244.1.3")
DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, ip="10.244.1.2")
KUBERNETES_API = Address("10.0.0.2", node=True)
METADATA = Address("169.254.169.254")
REGISTRY = Address("203.0.113.5")  # on the internet


def policies_and_daemon(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Pod]:
    labels = daemon_pod(docs)["metadata"]["labels"]
    policies = [
        {**d, "metadata": {**d["metadata"], "namespace": NAMESPACE}}
        for d in docs
        if d["kind"] == "NetworkPolicy"
    ]
    return policies, Pod(NAMESPACE, labels, ip="10.244.1.30")


def test_build_pods_and_build_steps_reach_the_internet_only_by_default(render: Render) -> None:
    policies, daemon = policies_and_daemon(render())
    for source in (BUILD, daemon):  # build steps share the daemon's network
        for target, port, reached in (
            (REGISTRY, Port(443), True),
            (DNS, Port(53), True),
            (DNS, Port(53, protocol="UDP"), True),
            (METADATA, Port(80), False),
            (HUB, Port(8081, "http"), False),
            (KUBERNETES_API, Port(6443), False),
        ):
            allowed = connection_allowed(policies, source=source, target=target, port=port)
            assert allowed is reached, (source, target, port)
    # only build pods reach the daemon, on its port; nobody reaches a build pod
    port = Port(1234, "buildkit")
    assert connection_allowed(policies, source=BUILD, target=daemon, port=port)
    assert not connection_allowed(policies, source=HUB, target=daemon, port=port)
    assert not connection_allowed(policies, source=daemon, target=BUILD, port=Port(8080))


def test_an_in_cluster_registry_is_added_by_an_egress_rule(render: Render, tmp_path: Path) -> None:
    registry = Address("10.40.0.7")
    rule = {"to": [{"ipBlock": {"cidr": "10.40.0.7/32"}}], "ports": [{"port": 5000}]}
    docs = render("-f", values_file(tmp_path, {"networkPolicy": {"buildkit": {"egress": [rule]}}}))
    policies, daemon = policies_and_daemon(docs)
    assert connection_allowed(policies, source=daemon, target=registry, port=Port(5000))
    assert not connection_allowed(policies, source=daemon, target=registry, port=Port(22))
    assert not connection_allowed(policies, source=BUILD, target=registry, port=Port(5000))
    # the rest stays as it was
    assert not connection_allowed(policies, source=daemon, target=METADATA, port=Port(80))
    assert connection_allowed(policies, source=daemon, target=REGISTRY, port=Port(443))


def test_egress_allow_rules_as_zero_to_jupyterhub_names_them(render: Render) -> None:
    policies, daemon = policies_and_daemon(
        render(
            "--set",
            "networkPolicy.egressAllowRules.privateIPs=true",
            "--set",
            "networkPolicy.egressAllowRules.cloudMetadataServer=true",
        )
    )
    assert connection_allowed(policies, source=daemon, target=HUB, port=Port(8081))
    assert connection_allowed(policies, source=BUILD, target=METADATA, port=Port(80))
    closed, daemon = policies_and_daemon(
        render(
            "--set",
            "networkPolicy.egressAllowRules.nonPrivateIPs=false",
            "--set",
            "networkPolicy.egressAllowRules.dnsPorts=false",
        )
    )
    assert not connection_allowed(closed, source=daemon, target=REGISTRY, port=Port(443))
    assert not connection_allowed(closed, source=daemon, target=DNS, port=Port(53, None, "UDP"))
    # build pods still reach the daemon
    assert connection_allowed(closed, source=BUILD, target=daemon, port=Port(1234, "buildkit"))
    off = render("--set", "networkPolicy.enabled=false")
    assert not [d for d in off if d["kind"] == "NetworkPolicy"]
