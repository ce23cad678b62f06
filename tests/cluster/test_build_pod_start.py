"""A build pod that cannot start fails within a minute, naming the cause, and is not
remembered as the commit's failure (issue #14): a Docker socket that is not on the
node, a Secret that does not exist (both FailedMount), a namespace whose Pod Security
Admission refuses the pod (the Job controller's FailedCreate).

No timed assertions: each test asserts the outcome and the message; the time limit
of ``finished`` only keeps a broken build from hanging the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from jobs.model import BuildState
from testkit.components import dockerfile

from . import test_kubernetes_executor as executor_tests
from .conftest import GitServer, Helpers

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

# the executor tests' fixtures: the builder image, a Role-bound account, the service
builder_image = executor_tests.builder_image
role_kubeconfig = executor_tests.role_kubeconfig
settings_for = executor_tests.settings_for
services = executor_tests.services


async def build_that_cannot_start(
    services: Any, values: dict[str, Any], git_server: GitServer, name: str
) -> Any:
    git_server.create_repo(name, {"Dockerfile": dockerfile("RUN true")})
    service = await services(values)
    outcome = await service.request(git_server.url(name))
    assert outcome.build is not None
    done = await executor_tests.finished(service, outcome.build.id, seconds=240)
    assert done.state is BuildState.FAILED
    assert not done.error_remembered  # the cluster's trouble, not the commit's
    # asked again, it is built again (here: fails again), never "failed-before"
    again = await service.request(git_server.url(name))
    assert again.status == "created"
    assert again.build is not None
    await service.cancel(again.build.id)
    return done


async def test_a_missing_docker_socket_is_named(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    batch_v1: client.BatchV1Api,
    namespace: str,
    kube: type[Helpers],
) -> None:
    values = settings_for(kubernetes={"docker_socket": "/var/run/no-such-docker.sock"})
    done = await build_that_cannot_start(services, values, git_server, "nosocket.git")
    assert done.error.startswith("a volume of the build pod cannot be mounted"), done.error
    assert "FailedMount" in done.error
    assert "/var/run/no-such-docker.sock" in done.error
    kube.wait_for(
        lambda: not executor_tests.jobs_in(batch_v1, namespace), 60, "the Job to be deleted"
    )


async def test_a_missing_secret_is_named(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
) -> None:
    secret = {"name": "no-such-push-secret", "key": "docker-config.json"}
    values = settings_for(kubernetes={"docker_config_secret": secret})
    done = await build_that_cannot_start(services, values, git_server, "nosecret.git")
    assert done.error.startswith("a volume of the build pod cannot be mounted"), done.error
    assert 'secret "no-such-push-secret" not found' in done.error


async def test_a_pod_security_refusal_is_named(
    services: Any,
    settings_for: Callable[..., dict[str, Any]],
    git_server: GitServer,
    core_v1: client.CoreV1Api,
    namespace: str,
) -> None:
    # the builder runs as root with the node's Docker socket: "restricted" refuses that
    core_v1.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    done = await build_that_cannot_start(services, settings_for(), git_server, "refused.git")
    assert done.error.startswith("the build's Job cannot create its pod"), done.error
    assert "FailedCreate" in done.error
    assert 'violates PodSecurity "restricted' in done.error
