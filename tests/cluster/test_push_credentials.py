"""Build pods push with the walkthrough's registry values (issue #14): the chart turns
``registry.username`` + ``secrets.registryPassword`` into a docker config.json Secret;
a Job made for those settings mounts it and pushes to a registry that requires
credentials (token auth, as Docker Hub, GHCR, Quay and Harbor do)."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from jobs.model import BuildState
from testkit.components import Registry, dockerfile, in_registry
from tests.chart.test_chart_static import RELEASED
from tests.integration.token_registry import start_token_registry

from . import test_kubernetes_executor as executor_tests
from .conftest import GitServer

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

# the executor tests' fixtures: the builder image, a Role-bound account, the service
role_kubeconfig = executor_tests.role_kubeconfig
settings_for = executor_tests.settings_for
services = executor_tests.services
finished = executor_tests.finished

REPO_DIR = Path(__file__).resolve().parents[2]
CREDENTIALS = ("walkthrough-builder", "walkthrough-password")


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A token-auth registry on the node's loopback, where the node's Docker daemon (the
    build pods' engine) pushes; it answers 401 for repositories not there yet."""
    registry, tokens = start_token_registry(
        tmp_path_factory.mktemp("token-registry"), CREDENTIALS, hide_missing=True
    )
    yield registry
    registry.stop()
    tokens.stop()


def chart_documents(helm: str, *args: str) -> list[dict[str, Any]]:
    """The chart rendered as released (its image values), with ``args``."""
    chart = str(REPO_DIR / "chart")
    out = subprocess.run(
        [helm, "template", "rel", chart, "--namespace", "bhs", "-f", str(RELEASED), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


async def test_a_job_for_the_walkthroughs_values_pushes(
    helm: str,
    token_registry: Registry,
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    core_v1: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    prefix = f"{token_registry.host}/w{uuid.uuid4().hex[:8]}-"
    docs = chart_documents(
        helm,
        "--set",
        f"imagePrefix={prefix}",
        "--set",
        f"registry.username={CREDENTIALS[0]}",
        "--set",
        f"secrets.registryPassword={CREDENTIALS[1]}",
    )
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d["data"]]
    chart_settings = yaml.safe_load(config_map["data"]["config.yaml"])
    ref = chart_settings["kubernetes"]["docker_config_secret"]
    # the Secret the settings name (the BuildKit builder's certificates are Secrets too)
    (secret,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"]]
    # the chart's Secret, as helm would create it in the builds' namespace
    core_v1.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=ref["name"]),
            data={ref["key"]: secret["data"][ref["key"]]},
        ),
    )
    # the service reads the same file (mounted from the Secret in the chart's pod)
    mounted = tmp_path / "docker-config.json"
    mounted.write_bytes(base64.b64decode(secret["data"][ref["key"]]))
    git_server.create_repo("pushed.git", {"Dockerfile": dockerfile("RUN echo pushed")})
    values = settings_for(
        image_prefix=prefix,
        registry={**chart_settings["registry"], "docker_config": str(mounted)},
        kubernetes={"docker_config_secret": ref},
    )
    service = await services(values)
    outcome = await service.request(git_server.url("pushed.git"))
    assert outcome.status == "created"  # the registry's 401 for a new repository: missing
    assert outcome.build is not None
    done = await finished(service, outcome.build.id)
    assert done.state is BuildState.BUILT, done.error
    # the image is there, for those credentials, and the service's check finds it
    assert not in_registry(token_registry.url, done.image)  # anonymous: refused
    assert (await service.request(git_server.url("pushed.git"))).status == "cached"
