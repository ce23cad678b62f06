"""The chart's BuildKit builder, rendered (no cluster): the daemon, its certificates, the
service's settings and the build pods' NetworkPolicy. The cluster test is
tests/cluster/test_buildkit.py."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from jobs.executors.kubernetes import manifests
from jobs.settings import load_settings

from . import test_chart_static as static
from .test_chart_static import K8S_VERSION, NAMESPACE, Render, config_text, run_helm

render = static.render  # a fixture of the static tests (helm is in conftest.py)

BUILDKIT = ("--set", "builder.type=buildkit")
NAME = "rel-binderhub-service-buildkit"


def of_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def certificates(docs: list[dict[str, Any]], secret: str) -> dict[str, x509.Certificate]:
    data = of_kind(docs, "Secret", secret)["data"]
    return {
        key: x509.load_pem_x509_certificate(base64.b64decode(data[key]))
        for key in ("ca.pem", "cert.pem")
    }


def test_buildkit_objects_are_valid_and_only_the_daemon_is_privileged(
    render: Render, helm: str
) -> None:
    docs = render(*BUILDKIT, "--set", "networkPolicy.enabled=true")
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    daemon = of_kind(docs, "Deployment", NAME)["spec"]["template"]["spec"]
    (container,) = daemon["containers"]
    assert container["securityContext"] == {"privileged": True}
    privileged = [
        c["name"]
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet")
        for c in d["spec"]["template"]["spec"]["containers"]
        if (c.get("securityContext") or {}).get("privileged")
    ]
    assert privileged == ["buildkitd"]
    assert not [d for d in docs if d["kind"] == "DaemonSet"]  # no dind, no socket
    for name in (NAME, "rel-binderhub-service-build-to-buildkit"):
        of_kind(docs, "NetworkPolicy", name)
    result = run_helm(helm, "lint", "--strict", str(Path(__file__).parents[2] / "chart"), *BUILDKIT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_service_is_told_the_daemons_address_and_the_client_secret(
    render: Render, tmp_path: Path
) -> None:
    docs = render(*BUILDKIT, "--set", "builder.image.repository=reg.example/r2d")
    path = tmp_path / "config.yaml"
    path.write_text(config_text(docs))
    k8s = load_settings(path).kubernetes
    assert k8s.builder == "buildkit"
    assert k8s.buildkit_host == f"tcp://{NAME}.{NAMESPACE}.svc:1234"
    assert k8s.buildkit_tls_secret == "rel-binderhub-service-buildkit-client"
    assert k8s.run_as_user == 1000
    assert k8s.builder_image == "reg.example/r2d:0.1.0.dev0"
    service = of_kind(docs, "Service", NAME)
    assert service["spec"]["ports"][0]["port"] == 1234
    of_kind(docs, "Secret", k8s.buildkit_tls_secret)
    # the repo2docker ConfigMap is the executor's own, byte for byte (or the service
    # rewrites it, and helm's next upgrade conflicts with it)
    settings = load_settings(path)
    config_map = of_kind(docs, "ConfigMap", manifests.config_map_name(settings))
    assert config_map["data"] == manifests.make_config_map(settings, NAMESPACE)["data"]


def test_the_certificates_chain_to_one_ca_and_name_the_service(render: Render) -> None:
    docs = render(*BUILDKIT)
    server = certificates(docs, "rel-binderhub-service-buildkit-server")
    client = certificates(docs, "rel-binderhub-service-buildkit-client")
    assert server["ca.pem"] == client["ca.pem"]
    ca = server["ca.pem"]
    for cert in (server["cert.pem"], client["cert.pem"]):
        cert.verify_directly_issued_by(ca)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    names = server["cert.pem"].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert f"{NAME}.{NAMESPACE}.svc" in names.value.get_values_for_type(x509.DNSName)


def test_the_daemons_config_has_its_registries_and_extra_config(render: Render) -> None:
    docs = render(
        *BUILDKIT,
        "--set-json",
        'builder.buildkit.insecureRegistries=["10.244.0.1:5000"]',
        "--set",
        'builder.buildkit.extraConfig=[registry."docker.io"]\nmirrors = ["m.example"]',
    )
    toml = of_kind(docs, "ConfigMap", NAME)["data"]["buildkitd.toml"]
    assert '[registry."10.244.0.1:5000"]\n  http = true\n  insecure = true' in toml
    assert 'mirrors = ["m.example"]' in toml
    assert 'address = ["tcp://0.0.0.0:1234"' in toml
    default = of_kind(render(*BUILDKIT), "ConfigMap", NAME)["data"]["buildkitd.toml"]
    assert "[registry." not in default


@pytest.mark.parametrize("builder", ["docker-socket", "dind"])
def test_other_builders_have_no_buildkit_objects(render: Render, builder: str) -> None:
    docs = render("--set", f"builder.type={builder}")
    assert not [d for d in docs if "buildkit" in d["metadata"]["name"]]
    assert "buildkit_host" not in yaml.safe_load(config_text(docs))["kubernetes"]


def test_buildkit_manifests_pass_yamllint(helm: str) -> None:
    text = static.template_text(helm, *BUILDKIT, "--set", "networkPolicy.enabled=true")
    assert static.yamllint_problems(text) == []
