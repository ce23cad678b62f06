"""A build pod reads nothing but its own repository and its own credential (issue 20),
against the real test cluster: the builder image of images/repo2docker (repo2docker 2026.4)
on the node's Docker daemon, and a private repository over HTTP on the node that demands
its credential, which is the canary.

The service makes a Secret with the credential for that build alone (its Job refers to
it by name); the pod reads it as ``GIT_CONFIG_GLOBAL``. The repositories' symlinks point
at that very file, at ``/proc/self/environ`` and at the pod's other directories; none of
it may reach the build's log, its error, the API's answers or the Job, while the clone
with the credential and the push work. The service talks to the API server as an account
bound to exactly ``kubernetes.rbac.RULES``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testkit.components import ServiceProcess, dockerfile, in_registry
from tests.integration.forge_standins import HttpGitServer, basic, start_http_git_server

from . import test_kubernetes_executor as executor_tests
from .conftest import NODE_IP

pytestmark = [pytest.mark.cluster]

# the executor tests' fixtures: the builder image, a Role-bound account, the service
role_kubeconfig = executor_tests.role_kubeconfig
settings_for = executor_tests.settings_for
servers = executor_tests.servers
follow = executor_tests.follow
jobs_in = executor_tests.jobs_in

BOT = "bot"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_IDENTITY},
        timeout=60,
    ).stdout.strip()


def make_repo(base: Path, name: str, files: dict[str, str], links: dict[str, str]) -> str:
    """A repository ``base/name`` with ``files`` and symlinks (name -> target); its SHA."""
    path = base / name
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=path)
    for rel, content in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(content)
    for rel, target in links.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path / rel)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "hostile", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


@pytest.fixture
def canary() -> str:
    return f"podcanary{uuid.uuid4().hex[:10]}x"  # no '-': runtime.txt would be quoted whole


@pytest.fixture
def private_git(canary: str) -> Iterator[HttpGitServer]:
    """Repositories over HTTP on the node's address (pods reach it), only to requests
    with the canary credential."""
    good = basic(BOT, canary)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_http_git_server(Path(tmp), lambda auths: auths == [good], host=NODE_IP)
        try:
            yield server
        finally:
            server.stop()


def forbidden(canary: str) -> list[str]:
    pair = base64.b64encode(f"{BOT}:{canary}".encode()).decode()
    return [canary, pair]


def served(server: ServiceProcess, build_id: str) -> dict[str, str]:
    with server.client() as http:
        return {
            "build": http.get(f"/api/v1/builds/{build_id}").text,
            "logs": http.get(f"/api/v1/builds/{build_id}/logs").text,
            "list": http.get("/api/v1/builds").text,
            "page": http.get("/").text,
        }


def git_secrets(core_v1: client.CoreV1Api, namespace: str) -> list[str]:
    names = [
        str(secret.metadata.name) for secret in core_v1.list_namespaced_secret(namespace).items
    ]
    return [name for name in names if "-git-" in name]


def build(server: ServiceProcess, url: str) -> dict[str, Any]:
    with server.client() as http:
        answer = http.post("/api/v1/builds", json={"repo": url, "ref": "main"})
        assert answer.status_code == 202, answer.text
        created: dict[str, Any] = answer.json()
    return created


def test_a_pods_credential_and_environment_stay_out_of_what_is_served(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    private_git: HttpGitServer,
    canary: str,
    batch_v1: client.BatchV1Api,
    core_v1: client.CoreV1Api,
    namespace: str,
) -> None:
    # no Dockerfile: repo2docker reads runtime.txt and apt.txt in the pod before it fails
    # to pull its base image offline, and quotes a runtime.txt it cannot parse whole
    make_repo(
        private_git.base,
        "hostile",
        {"README.md": "hostile\n"},
        {
            "runtime.txt": "/etc/binderhub-service-git/config",
            "apt.txt": "/proc/self/environ",
            "binder": "/etc/binderhub-service-git",
        },
    )
    server = servers(
        settings_for(
            forges={
                "credentials": [
                    {
                        "url": f"http://{NODE_IP}:{private_git.port}",
                        "username": BOT,
                        "password": canary,
                    },
                    {"url": "https://forge.example.org", "password": f"other{canary}"},
                ]
            }
        )
    )
    created = build(server, private_git.url("hostile"))
    done = follow(server, created["id"])
    assert done["state"] == "failed", done
    texts = served(server, created["id"])
    (job,) = jobs_in(batch_v1, namespace)
    texts["job"] = json.dumps(batch_v1.api_client.sanitize_for_serialization(job))
    leaks = [
        f"{secret} in {where}"
        for where, text in texts.items()
        for secret in [*forbidden(canary), f"other{canary}"]
        if secret in text
    ]
    assert not leaks, leaks
    log = texts["logs"]
    for link in ("runtime.txt", "apt.txt", "binder"):
        assert f"removed the symlink {link} -> " in log, log
    # the clone used the credential, and only it
    assert private_git.authorizations
    assert all(auths == [basic(BOT, canary)] for auths in private_git.authorizations)
    # the Job mounts the build's own Secret, which is gone now that the build ended
    volumes = job.spec.template.spec.volumes
    (secret_name,) = [str(v.secret.secret_name) for v in volumes if v.name == "git-config"]
    assert secret_name.startswith(str(job.metadata.name))
    assert secret_name not in git_secrets(core_v1, namespace)


def test_a_private_repository_with_hostile_links_builds_and_pushes_in_a_pod(
    servers: Callable[..., ServiceProcess],
    settings_for: Callable[..., dict[str, Any]],
    private_git: HttpGitServer,
    canary: str,
    registry: str,
    core_v1: client.CoreV1Api,
    namespace: str,
) -> None:
    make_repo(
        private_git.base,
        "built",
        {"Dockerfile": dockerfile("COPY . /srv/repo/", "RUN ls -la /srv/repo/")},
        {
            "credentials": "/etc/binderhub-service-git/config",
            "environ": "/proc/self/environ",
            "inside": "Dockerfile",
        },
    )
    server = servers(
        settings_for(
            forges={
                "credentials": [
                    {
                        "url": f"http://{NODE_IP}:{private_git.port}",
                        "username": BOT,
                        "password": canary,
                    }
                ]
            }
        )
    )
    created = build(server, private_git.url("built"))
    done = follow(server, created["id"])
    assert done["state"] == "built", done
    assert in_registry(f"http://{registry}", done["image"])
    texts = served(server, created["id"])
    assert not [s for s in forbidden(canary) for text in texts.values() if s in text]
    log = texts["logs"]
    assert "removed the symlink credentials -> /etc/binderhub-service-git/config" in log
    assert "removed the symlink environ -> /proc/self/environ" in log
    assert "inside -> Dockerfile" in log  # the image's own listing: the link inside stays
    assert not git_secrets(core_v1, namespace)
