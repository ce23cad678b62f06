"""A Zenodo record and a Dataverse dataset built by a build pod on the real test cluster
(issue 25).

The service (the chart's release) resolves the DOI through ``providers.proxy`` to the
stand-in of Zenodo under its real host name (``tests/integration/provider_standins.py``:
one HTTPS server for the providers' names, signed by a test CA that only the chart's
``caBundle`` holds), names the image after the version, and a build pod fetches that
version with repo2docker, itself through the same proxy, which listens on the node's
address. The chart's NetworkPolicies (enforced by kube-router) let build pods reach the
node only on the proxy's and the registry's ports (``networkPolicy.builds.egress``): no
policy is turned off, and the pod has no other way to a host named ``zenodo.org``.

A newer version is published right after the request was answered: the pod is handed the
version the request resolved (``https://zenodo.org/records/<version>``, or the dataset's
URL with ``&version=``, fetched by builder/'s ``Dataverse`` in the builder image), never
the DOI, so the image tagged with that version holds it.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from kubernetes import client

from testkit.components import in_registry
from tests.integration.provider_records import (
    CONCEPT,
    DOI,
    DV_LATEST,
    DV_PAGE,
    HOSTS,
    PAGE,
    ZENODO,
    publish,
    publish_dataverse,
    version_url,
)
from tests.integration.provider_standins import ConnectProxy, ProviderStandIn

from .conftest import NODE_IP, Helpers
from .enforcement import KUBECTL, node_egress, port_of
from .test_buildkit import base_registry  # noqa: F401 - a fixture
from .test_chart import (  # noqa: F401 - fixtures
    CHART,
    GITHUB_SECRET,
    RELEASE,
    ServiceProxy,
    proxy,
    run_helm,
    service_image,
    wait_for_build,
)
from .test_proxy import pod_ip

pytestmark = pytest.mark.cluster

REQUEST = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8080/api/v1/builds",
    data=json.dumps({"repo": sys.argv[2]}).encode(),
    headers={"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json"},
)
try:
    with urllib.request.urlopen(request, timeout=120) as answer:
        print(json.dumps([answer.status, json.load(answer)]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, json.load(e)]))
"""


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[ProviderStandIn]:
    server = ProviderStandIn(tmp_path / "standin", HOSTS)
    yield server
    server.stop()


@pytest.fixture
def provider_proxy(kubeconfig: str, standin: ProviderStandIn) -> Iterator[ConnectProxy]:
    """The stand-ins' CONNECT proxy on the node's address (there once the cluster is)."""
    server = ConnectProxy(standin.hosts, standin.port, listen=NODE_IP)
    yield server
    server.stop()


def request_record(
    kubeconfig: str, namespace: str, core_v1: client.CoreV1Api, token: str, repo: str
) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/builds ``{"repo": repo}`` from inside the service's pod (the API
    server's service proxy passes no ``Authorization`` header on)."""
    (pod,) = core_v1.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=service"
    ).items
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, "exec", "-n", namespace, str(pod.metadata.name),
         "--", "python3", "-c", REQUEST, token, repo],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout)
    return int(status), body


class Case(NamedTuple):
    """A provider's record in the test: how to publish a version, what to ask, what the
    build records, and what the service and the pod ask of the stand-in."""

    provider: str
    publish: Callable[[ProviderStandIn, str, str], None]
    versions: tuple[str, str]  # the one resolved, the one published after
    repo: str
    page: str
    tag: str
    resolution: str  # the service's one request for the latest version
    fetched: str  # the pod's request for the version it was handed
    host: str


CASES = [
    Case(
        "zenodo",
        lambda standin, version, base: publish(standin, version, base=base),
        ("3242081", "3242090"),
        DOI,
        PAGE,
        "3242081",
        f"{ZENODO}/{CONCEPT}",
        f"{ZENODO}/3242081/files",
        "zenodo.org:443",
    ),
    Case(
        "dataverse",
        publish_dataverse,
        ("1.0", "2.0"),
        DV_PAGE,
        DV_PAGE,
        "v1.0",
        DV_LATEST,
        version_url("1.0"),
        "dataverse.harvard.edu:443",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.provider for case in CASES])
def test_a_record_is_built_by_a_build_pod_as_the_version_it_resolved(
    case: Case,
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
    standin: ProviderStandIn,
    provider_proxy: ConnectProxy,
    base_registry: str,  # noqa: F811 - test_buildkit's fixture
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    upstream_buildkit: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    base = f"{base_registry}/debian:bookworm"
    resolved, newer = case.versions
    case.publish(standin, resolved, base)
    token = uuid.uuid4().hex[:8]
    api_token = secrets.token_hex(16)
    repository, _, tag = service_image.rpartition(":")
    b_repository, _, b_tag = builder_image.rpartition(":")
    bk_repository, _, bk_tag = upstream_buildkit.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{base_registry}/bhs-records-{token}-",
        "registry": {"url": f"http://{base_registry}"},
        "apiTokens": [{"name": "test", "token": api_token, "scopes": ["builds:write"]}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "caBundle": {"pem": standin.ca.read_text()},  # the stand-ins' test CA
        "config": {"providers": {"proxy": provider_proxy.url}},
        "builder": {
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "buildkit": {
                "image": {"repository": bk_repository, "tag": bk_tag, "pullPolicy": "Never"},
                "insecureRegistries": [base_registry],
            },
        },
        # the node's address only on the proxy's and the registry's ports
        "networkPolicy": node_egress(NODE_IP, provider_proxy.port, port_of(base_registry)),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    run_helm(helm, kubeconfig, namespace, "install", RELEASE, str(CHART), "-f", str(values_file),
             "--wait", "--timeout", "5m")  # fmt: skip

    status, build = request_record(kubeconfig, namespace, core_v1, api_token, case.repo)
    assert status == 202, build
    assert (build["repo"], build["ref"], build["sha"]) == (case.page, "latest", resolved)
    assert build["image"].endswith(f":{case.tag}")
    case.publish(standin, newer, base)  # a newer version, before the pod fetches

    done = wait_for_build(proxy, kube, build["id"])
    log = proxy.http.get(f"/api/v1/builds/{build['id']}/logs").text
    assert done["state"] == "built", (done.get("error"), log, provider_proxy.refused)
    assert f"built-{case.provider}-version-{resolved}" in log
    assert f"built-{case.provider}-version-{newer}" not in log
    assert in_registry(f"http://{base_registry}", build["image"])
    # the service resolved the latest once; the pod fetched the version, never the latest
    assert standin.asked.count(case.resolution) == 1
    assert case.fetched in standin.asked
    assert not [url for url in standin.asked if newer in url]
    assert provider_proxy.refused == []
    # the build pod itself went through the proxy, and its Job names the provider
    build_pod = pod_ip(core_v1, namespace, f"binderhub-service/build-id={build['id']}")
    assert (build_pod, case.host) in provider_proxy.tunnelled
    (job,) = (
        client.BatchV1Api(api_client)
        .list_namespaced_job(namespace, label_selector=f"binderhub-service/build-id={build['id']}")
        .items
    )
    assert job.metadata.annotations["binderhub-service/provider"] == case.provider
