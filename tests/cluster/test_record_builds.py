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

HydroShare, CKAN, Software Heritage and Mercurial share one release
(``test_hydroshare_ckan_swh_and_hg_are_built_by_build_pods_as_resolved``): a resource and a
dataset modified while their pods download them (builder/'s providers see the new time and
stop: nothing pushed under the older tag), then built at the newer time; a SWHID; a
Mercurial branch, whose changeset committed after the request is not built. The Mercurial
server is a real ``hg serve`` on the node's address over plain HTTP: the service asks it
directly (its ``hg identify`` uses neither ``providers.proxy`` nor ``ca_bundle`` yet), and
the build pod's ``hg`` goes through ``providers.proxy``, which forwards plain HTTP to it
(``ConnectProxy.origins``); the pods' NetworkPolicy leaves its port closed.
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
    A1,
    A2,
    CKAN_PAGE,
    CONCEPT,
    DOI,
    DV_LATEST,
    DV_PAGE,
    HOSTS,
    HS_PAGE,
    HS_S3,
    PAGE,
    SWH,
    ZENODO,
    archive,
    hg_commit,
    hg_served,
    modify_resource,
    publish,
    publish_dataset,
    publish_dataverse,
    version_url,
)
from tests.integration.provider_standins import ConnectProxy, ProviderStandIn, recorded

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


def install(
    helm: str,
    kubeconfig: str,
    namespace: str,
    standin: ProviderStandIn,
    provider_proxy: ConnectProxy,
    registry: str,
    images: tuple[str, str, str],
    tmp_path: Path,
    providers: dict[str, Any] | None = None,
    **more: Any,
) -> str:
    """Install the chart's release in ``namespace``: ``providers.proxy`` at the stand-ins'
    proxy, their test CA in ``caBundle``, builds pushed to ``registry``, and build
    pods allowed to reach the node on the proxy's and the registry's ports only. ``more``:
    other values, merged over these at the top level; ``providers``: more settings of
    ``providers``. ``images``: the service's, the
    builder's and BuildKit's. Returns the API token (scope
    ``builds:write``)."""
    token = uuid.uuid4().hex[:8]
    api_token = secrets.token_hex(16)
    (repository, _, tag), (b_repository, _, b_tag), (bk_repository, _, bk_tag) = (
        image.rpartition(":") for image in images
    )
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "imagePrefix": f"{registry}/bhs-records-{token}-",
        "registry": {"url": f"http://{registry}"},
        "apiTokens": [{"name": "test", "token": api_token, "scopes": ["builds:write"]}],
        "openRead": True,
        "secrets": {"githubWebhookSecret": GITHUB_SECRET},
        "caBundle": {"pem": standin.ca.read_text()},  # the stand-ins' test CA
        "config": {"providers": {"proxy": provider_proxy.url, **(providers or {})}},
        "builder": {
            "image": {"repository": b_repository, "tag": b_tag, "pullPolicy": "Never"},
            "buildkit": {
                "image": {"repository": bk_repository, "tag": bk_tag, "pullPolicy": "Never"},
                "insecureRegistries": [registry],
            },
        },
        # the node's address only on the proxy's and the registry's ports
        "networkPolicy": node_egress(NODE_IP, provider_proxy.port, port_of(registry)),
        **more,
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    run_helm(helm, kubeconfig, namespace, "install", RELEASE, str(CHART), "-f", str(values_file),
             "--wait", "--timeout", "5m")  # fmt: skip
    return api_token


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
    api_token = install(
        helm, kubeconfig, namespace, standin, provider_proxy, base_registry,
        (service_image, builder_image, upstream_buildkit), tmp_path,
    )  # fmt: skip

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


# ---------------------------------------------------------------------------------------
# HydroShare, CKAN, Software Heritage and Mercurial: one release builds all four.
# ---------------------------------------------------------------------------------------


@pytest.fixture
def node_hg(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Mercurial repository served by a real ``hg serve`` on the node's address (the
    service's pod asks it there with ``hg identify``; build pods, whose NetworkPolicy
    does not open its port, reach it only through the proxy). Yields its URL
    (``http://<node>:<port>/repo``) and its directory."""
    with hg_served(tmp_path / "hg-repo", NODE_IP) as served:
        yield served


CKAN_FILE = recorded("ckan_package")["result"]["resources"][0]["url"].replace(
    "/download/dockerfile", "/download/Dockerfile"
)  # the resource's URL as publish_dataset serves it


def test_hydroshare_ckan_swh_and_hg_are_built_by_build_pods_as_resolved(
    helm: str,
    kubeconfig: str,
    namespace: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    kube: type[Helpers],
    standin: ProviderStandIn,
    provider_proxy: ConnectProxy,
    node_hg: tuple[str, Path],
    base_registry: str,  # noqa: F811 - test_buildkit's fixture
    service_image: str,  # noqa: F811 - test_chart's fixture
    builder_image: str,
    upstream_buildkit: str,
    proxy: ServiceProxy,  # noqa: F811 - test_chart's fixture
    tmp_path: Path,
) -> None:
    """One release, four providers, six build pods, all started together: a HydroShare
    resource and a CKAN dataset each modified while its pod downloads it (the pod stops
    with nothing pushed under the older time's tag; the next request builds the newer
    time under its own), a SWHID, and a Mercurial branch (the changeset the service
    resolved, not one committed after). Every pod reaches the stand-ins through the
    proxy only, and the Mercurial server through it too (its port is closed to pods)."""
    base = f"{base_registry}/debian:bookworm"
    hg_url, hg_dir = node_hg
    provider_proxy.origins = frozenset({hg_url.removeprefix("http://").partition("/")[0]})
    hs_first = modify_resource(standin, 1700000000, base)
    ckan_first = publish_dataset(standin, 1700000000, A1, base)
    swhid, _ = archive(standin, tmp_path, "archived", base)
    changeset = hg_commit(hg_dir, "resolved", base)
    held = {HS_S3: standin.hold(HS_S3), CKAN_FILE: standin.hold(CKAN_FILE)}
    api_token = install(
        helm, kubeconfig, namespace, standin, provider_proxy, base_registry,
        (service_image, builder_image, upstream_buildkit), tmp_path,
        providers={"cache_seconds": 0},  # the next request asks again
        limits={"maxConcurrentBuilds": 4, "maxConcurrentBuildsPerRepo": 1},
    )  # fmt: skip

    def request(repo: str) -> dict[str, Any]:
        status, build = request_record(kubeconfig, namespace, core_v1, api_token, repo)
        assert status == 202, build
        return build

    def finished(build: dict[str, Any]) -> tuple[dict[str, Any], str]:
        done = wait_for_build(proxy, kube, build["id"])
        return done, proxy.http.get(f"/api/v1/builds/{build['id']}/logs").text

    hs = request(HS_PAGE)
    ckan = request(f"ckan:{CKAN_PAGE}")
    swh = request(swhid)
    hg_build = request(f"hg+{hg_url}")
    assert (hs["sha"], ckan["sha"], swh["sha"], hg_build["sha"]) == (
        hs_first, ckan_first, swhid, changeset
    )  # fmt: skip
    hg_commit(hg_dir, "committed-after", base)  # the branch moves on
    try:  # both pods are downloading: the records change under them
        kube.wait_for(lambda: all(url in standin.asked for url in held), 300, "the downloads")
        hs_second = modify_resource(standin, 1700000500, base)
        ckan_second = publish_dataset(standin, 1700000500, A2, base)
    finally:
        for gate in held.values():
            gate.set()

    for build, provider in ((hs, "HydroShare resource"), (ckan, "CKAN dataset")):
        done, log = finished(build)
        assert done["state"] == "failed", log
        assert "was modified during the download" in log, log
        assert done["error"].startswith(f"the record changed while it was fetched: {provider}")
        assert not in_registry(f"http://{base_registry}", build["image"])
    again = {"hydroshare": request(HS_PAGE), "ckan": request(f"ckan:{CKAN_PAGE}")}
    assert (again["hydroshare"]["sha"], again["ckan"]["sha"]) == (hs_second, ckan_second)
    expected = {
        "hydroshare": (again["hydroshare"], "built-hydroshare-version-1700000500"),
        "ckan": (again["ckan"], "built-ckan-version-1700000500"),
        "swh": (swh, "built-swh-archived"),
        "hg": (hg_build, "built-hg-resolved"),
    }
    for provider, (build, marker) in expected.items():
        done, log = finished(build)
        assert done["state"] == "built", (provider, done.get("error"), log)
        assert marker in log, (provider, log)
        assert "version-1700000000" not in log, log
        assert "committed-after" not in log, log
        assert in_registry(f"http://{base_registry}", build["image"]), provider
        (job,) = (
            client.BatchV1Api(api_client)
            .list_namespaced_job(
                namespace, label_selector=f"binderhub-service/build-id={build['id']}"
            )
            .items
        )
        assert job.metadata.annotations["binderhub-service/provider"] == provider

    # each pod went through the proxy: to the stand-ins' names, and to the hg server
    def pod_of(build: dict[str, Any]) -> str:
        return pod_ip(core_v1, namespace, f"binderhub-service/build-id={build['id']}")

    tunnelled = set(provider_proxy.tunnelled)
    for build, host in (
        (again["hydroshare"], "s3.hydroshare.org:443"),
        (again["ckan"], "demo.ckan.org:443"),
        (swh, "archive.softwareheritage.org:443"),
    ):
        assert (pod_of(build), host) in tunnelled, (host, provider_proxy.tunnelled)
    hg_pod = pod_of(hg_build)
    assert [line for ip, line in provider_proxy.forwarded if ip == hg_pod], provider_proxy.forwarded
    assert provider_proxy.refused == []
    # the service asked the archive once; the pod fetched the revision's directory
    rev = swhid.rpartition(":")[2]
    assert f"{SWH}/vault/directory/" in " ".join(standin.asked), standin.asked
    assert standin.asked.count(f"{SWH}/revision/{rev}/") == 2
