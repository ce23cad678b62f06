"""Which Pod Security level each ``builder.type`` needs, judged by the API server's own
admission (issue 24): every pod the chart puts into its namespace (the service's, daemons')
and the build pod the executor makes for the chart's settings, created with a server-side
dry run in namespaces enforcing ``baseline`` and ``restricted``, with the chart's defaults
and with what managed clusters add (issue 23: the CA bundle's init container and mounts, the
proxy). The chart's table
(chart/templates/builder-levels.tpl, docs/kubernetes.md "Which builder") must say the same.
And ``helm install`` into a namespace whose level refuses the builder fails, naming it.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobs.executors.kubernetes import manifests
from jobs.settings import load_settings
from tests.chart.test_chart_managed_clusters import pem_certificate
from tests.chart.test_chart_static import CHART, RELEASED
from tests.unit.test_kube_manifests import make_build

pytestmark = pytest.mark.cluster

PSA = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
TABLE = {
    "docker-socket": "privileged",
    "dind": "privileged",
    "buildkit": "privileged",
    "buildkit-rootless": "baseline",
    "buildkit-external": "restricted",
}
EXTRA = {
    "buildkit-external": [
        "--set", "builder.external.host=tcp://buildkitd.elsewhere.svc:1234",
        "--set", "builder.external.tlsSecret=buildkit-client",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def level_namespaces(core_v1: client.CoreV1Api) -> Iterator[dict[str, str]]:
    """One namespace per enforced level: {level: name}."""
    names = {level: f"bhs-psa-{level}-{uuid.uuid4().hex[:6]}" for level in LEVELS}
    for level, name in names.items():
        core_v1.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={PSA: level}))
        )
    try:
        yield names
    finally:
        for name in names.values():
            core_v1.delete_namespace(name, propagation_policy="Background")


def managed_values(tmp_path: Path) -> list[str]:
    """What managed clusters add to every pod (issue 23): a CA bundle (the build pod's
    ``ca-bundle`` init container, the daemons' mounts) and a proxy."""
    path = tmp_path / "managed.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "caBundle": {"pem": pem_certificate()},
                "proxy": {"httpsProxy": "http://proxy.example.org:3128"},
            }
        )
    )
    return ["-f", str(path)]


def render(
    helm: str, builder: str, namespace: str, more: list[str] | None = None
) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm, "template", "bhs", str(CHART), "-f", str(RELEASED), "--namespace", namespace,
         "--set", f"builder.type={builder}", *EXTRA.get(builder, []), *(more or [])],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def pods_of(docs: list[dict[str, Any]], tmp_path: Path, namespace: str) -> dict[str, Any]:
    """{what: pod spec}: the templates of the chart's workloads, and the build pod the
    executor makes with the settings the chart gives the service."""
    pods = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet")
    }
    (config,) = [
        d["data"]["config.yaml"]
        for d in docs
        if d["kind"] == "ConfigMap" and "config.yaml" in (d.get("data") or {})
    ]
    data = yaml.safe_load(config)
    if "ca_bundle" in data:  # the CA ConfigMap's mount in the service's pod
        bundle = tmp_path / "ca.crt"
        bundle.write_text(pem_certificate())
        data["ca_bundle"] = str(bundle)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    job = manifests.make_build_job(make_build(), settings, namespace)
    pods["build pod"] = job["spec"]["template"]["spec"]
    return pods


def admitted(core: client.CoreV1Api, namespace: str, spec: dict[str, Any]) -> str | None:
    """None when the API server admits a pod of ``spec`` in ``namespace`` (a dry run),
    else its refusal."""
    # the ServiceAccount admission refuses a pod whose account the release would make, before
    # Pod Security judges it; Pod Security does not look at the account
    pod_spec = {k: v for k, v in spec.items() if k not in ("serviceAccountName", "serviceAccount")}
    body: Any = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"probe-{uuid.uuid4().hex[:8]}"},
        "spec": {**pod_spec, "restartPolicy": spec.get("restartPolicy", "Always")},
    }
    try:
        core.create_namespaced_pod(namespace, body, dry_run="All")
    except ApiException as e:
        if e.status == 403 and "violates PodSecurity" in (e.body or ""):
            return str(json.loads(str(e.body))["message"])
        raise
    return None


@pytest.mark.parametrize("managed", [False, True], ids=["defaults", "ca-bundle-and-proxy"])
@pytest.mark.parametrize("builder", list(TABLE))
def test_every_pod_of_a_builder_is_admitted_at_its_level_and_refused_above_it(
    builder: str,
    managed: bool,
    helm: str,
    core_v1: client.CoreV1Api,
    level_namespaces: dict[str, str],
    tmp_path: Path,
) -> None:
    needed = TABLE[builder]
    more = managed_values(tmp_path) if managed else []
    judged: dict[str, dict[str, str | None]] = {}
    for level, namespace in level_namespaces.items():
        pods = pods_of(render(helm, builder, namespace, more), tmp_path, namespace)
        init = [c["name"] for c in pods["build pod"].get("initContainers", [])]
        assert ("ca-bundle" in init) is managed, init
        judged[level] = {what: admitted(core_v1, namespace, spec) for what, spec in pods.items()}
    fits = [level for level in LEVELS if all(v is None for v in judged[level].values())]
    # the strictest level that admits every pod is the table's
    assert fits[-1] == needed, judged
    assert LEVELS.index(needed) == len(fits) - 1, judged


def test_install_where_the_level_refuses_the_builder_fails_naming_what_fits(
    helm: str,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    level_namespaces: dict[str, str],
) -> None:
    namespace = level_namespaces["baseline"]
    result = subprocess.run(
        [helm, "--kubeconfig", kubeconfig, "--namespace", namespace, "install", "bhs",
         str(CHART), "-f", str(RELEASED), "--set", "builder.type=buildkit"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    message = result.stderr
    assert f'namespace "{namespace}" enforces Pod Security "baseline"' in message, message
    assert "builder.type buildkit" in message
    assert "buildkit-external (restricted), buildkit-rootless (baseline)" in message
    # refused before anything was made
    assert not core_v1.list_namespaced_config_map(
        namespace, label_selector="app.kubernetes.io/instance=bhs"
    ).items
    # what fits installs there (rendered against the cluster: the check passes)
    fits = subprocess.run(
        [helm, "--kubeconfig", kubeconfig, "--namespace", level_namespaces["restricted"],
         "template", "bhs", str(CHART), "-f", str(RELEASED), "--dry-run=server",
         "--set", "builder.type=buildkit-external", *EXTRA["buildkit-external"]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert fits.returncode == 0, fits.stderr
