"""The chart's builders for namespaces that refuse privileged pods (issue 24), rendered
without a cluster: what each hands the service, the values each requires, and that `helm
template` (no cluster, nothing to look up) passes the namespace check. The admission itself
is judged by the API server in tests/cluster/test_builder_levels.py."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from jobs.executors.kubernetes import manifests
from tests.unit.test_kube_manifests import make_build

from . import test_chart_static as static
from .test_chart_static import CHART, K8S_VERSION, NAMESPACE, Render, load_as_service, run_helm

render = static.render  # a fixture of the static tests (helm is in conftest.py)

EXTERNAL = (
    "--set", "builder.type=buildkit-external",
    "--set", "builder.external.host=tcp://buildkitd.elsewhere.svc:1234",
    "--set", "builder.external.tlsSecret=buildkit-client",
)  # fmt: skip


def test_external_daemon_no_daemon_here_and_the_service_builds_there(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(*EXTERNAL, "--set", "builder.external.tlsServerName=bk.example")
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # no daemon here: only the build pods' way to the one elsewhere (a NetworkPolicy)
    assert [d["kind"] for d in docs if "buildkit" in d["metadata"]["name"]] == ["NetworkPolicy"]
    k8s = load_as_service(docs, tmp_path, monkeypatch).kubernetes
    assert (k8s.builder, k8s.buildkit_host) == ("buildkit", "tcp://buildkitd.elsewhere.svc:1234")
    assert (k8s.buildkit_tls_secret, k8s.buildkit_tls_servername) == (
        "buildkit-client",
        "bk.example",
    )
    assert k8s.run_as_user == 1000


def test_rootless_daemons_config_and_the_service_runs_one_per_build_pod(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(
        "--set", "builder.type=buildkit-rootless",
        "--set", "builder.rootless.insecureRegistries[0]=10.0.0.1:5000",
    )  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    (config_map,) = [
        d for d in docs if d["metadata"]["name"] == "rel-binderhub-service-buildkit-rootless"
    ]
    assert '[registry."10.0.0.1:5000"]\n  http = true' in config_map["data"]["buildkitd.toml"]
    assert not [
        d
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet") and "buildkit" in d["metadata"]["name"]
    ]
    settings = load_as_service(docs, tmp_path, monkeypatch)
    assert settings.kubernetes.builder == "buildkit-rootless"
    assert settings.kubernetes.rootless_buildkit.config_map == config_map["metadata"]["name"]
    job = manifests.make_build_job(make_build(), settings, NAMESPACE)
    (daemon,) = job["spec"]["template"]["spec"]["initContainers"]
    assert daemon["image"] == "docker.io/moby/buildkit:v0.34.2-rootless"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "builder.type=buildkit-external"), "builder.external.host is empty"),
        (
            ("--set", "builder.type=buildkit-external", "--set", "builder.external.host=tcp://b:1"),
            "builder.external.tlsSecret is empty",
        ),
        (("--set", "builder.type=kaniko"), "/builder/type"),
        (
            ("--set", "builder.type=buildkit-external", "--set", "builder.external.host=b"),
            "/builder/external/host",
        ),
        (
            ("--set", "builder.type=buildkit-rootless", "--set", "builder.rootless.image.tag="),
            "builder.rootless.image",
        ),
    ],
)
def test_a_builder_without_its_required_values_fails_naming_them(
    helm: str, args: tuple[str, ...], message: str
) -> None:
    result = run_helm(helm, "template", "rel", str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
