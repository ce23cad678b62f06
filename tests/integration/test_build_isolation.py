"""A build reads nothing of the service or the host (issue 20), with the real local
executor, repo2docker (2026.4 on this session's buildkitd; 2024.7.0 on the Docker daemon),
a private repository served over HTTP that demands its credential, and a registry with
authentication.

The repositories are hostile: their files are symlinks to ``/proc/self/environ``, to a
file of the host, and to the build's own credential files. The service runs as users run
it (``binderhub-service serve``) with canary secrets in its environment, in its settings
and in that host file; none may appear in a stored log line, a stored error, an API
answer, the page or the BinderHub stream, while the build's own credentials still work.

Offline only repositories with their own Dockerfile build to the end. A repository
without one still makes repo2docker read ``runtime.txt``, ``apt.txt`` and ``binder/``
on the host before it fails to pull its base image: enough for the reads to leak.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.executors.local.executor import BUILD_ID_ENV
from jobs.redaction import BUILD_DIR, BUILDKIT
from testkit.buildkit import BuildKitDaemon
from testkit.components import GitRepo, GitServer, Registry, ServiceProcess, dockerfile, git

from .conftest import REGISTRY_AUTH
from .forge_standins import HttpGitServer, basic, start_http_git_server
from .test_binderhub_stream import git_spec, records, store_of, stream
from .test_buildkit import base_image, buildkitd  # noqa: F401 - session fixtures
from .test_http_api import wait_for_state

StartServer = Callable[..., ServiceProcess]
BOT = "bot"
CURRENT = {"version": "2026.4.0", "command": None}
"""repo2docker 2026.4 (the service's default), not the fixture's 2024.7.0."""


@dataclass(frozen=True)
class Canaries:
    env: str
    """In the service's environment, under a name the service does not know."""
    webhook: str
    """A secret setting, given in the service's environment."""
    host: str
    """In a file of the host (``host_file``) outside every build's directory."""
    forge: str
    """The password of the forge credential that clones the private repositories."""
    other_forge: str
    """The password of a credential for another host: no build here may see it."""
    host_file: Path

    def forbidden(self) -> dict[str, str]:
        """Every text that must never be served, by what it is."""
        registry_user, registry_password = REGISTRY_AUTH
        texts = {
            "env": self.env,
            "webhook": self.webhook,
            "host file": self.host,
            "forge password": self.forge,
            "forge header": basic(BOT, self.forge).removeprefix("Basic "),
            "other forge password": self.other_forge,
            "other forge header": basic(BOT, self.other_forge).removeprefix("Basic "),
            "registry password": registry_password,
            "registry auth": base64.b64encode(
                f"{registry_user}:{registry_password}".encode()
            ).decode(),
        }
        return texts


@pytest.fixture
def canaries(tmp_path: Path, unique: str) -> Canaries:
    host_file = tmp_path / "host-secret.txt"
    # no '-': repo2docker quotes the whole runtime.txt it cannot parse
    host = f"hostcanary{unique}x"
    host_file.write_text(host + "\n")
    return Canaries(
        env=f"envcanary{unique}x",
        webhook=f"webhookcanary{unique}x",
        host=host,
        forge=f"forgecanary{unique}x",
        other_forge=f"otherforgecanary{unique}x",
        host_file=host_file,
    )


@pytest.fixture
def private_git(git_server: GitServer, canaries: Canaries) -> Iterator[HttpGitServer]:
    """The git server's repositories over HTTP, only with the forge credential."""
    good = basic(BOT, canaries.forge)
    server = start_http_git_server(git_server.base, lambda auths: auths == [good])
    yield server
    server.stop()


def commit_links(repo: GitRepo, links: dict[str, str], message: str = "links") -> str:
    """Commit symlinks (name -> target, as written) into ``repo``; returns the SHA."""
    for name, target in links.items():
        path = repo.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(target, path)
    git("add", "-A", cwd=repo.path)
    git("commit", "-q", "-m", message, cwd=repo.path)
    return git("rev-parse", "HEAD", cwd=repo.path)


def start_isolated_server(
    start_server: StartServer,
    canaries: Canaries,
    private_git: HttpGitServer,
    auth_registry: Registry,
    unique: str,
    *,
    repo2docker: dict[str, Any],
    daemon: BuildKitDaemon | None,
) -> ServiceProcess:
    """``binderhub-service serve`` with canaries in its environment and settings."""
    user, password = REGISTRY_AUTH
    settings: dict[str, Any] = {
        "image_prefix": f"{auth_registry.host}/t{unique}-",
        "registry": {"username": user, "password": password},
        "repo2docker": repo2docker,
        "forges": {
            "credentials": [
                {"url": f"http://127.0.0.1:{private_git.port}", "username": BOT},
                {"url": "https://forge.example.org", "username": BOT},
            ]
        },
    }
    if daemon is not None:
        settings["buildkit"] = {"host": daemon.address}
    env = {
        "BHS_TEST_CANARY": canaries.env,
        "BINDERHUB_SERVICE_WEBHOOKS__GITHUB_SECRET": canaries.webhook,
        # the passwords through the environment, as docs/forges.md suggests
        "BINDERHUB_SERVICE_FORGES__CREDENTIALS": json.dumps(
            [
                {**settings["forges"]["credentials"][0], "password": canaries.forge},
                {**settings["forges"]["credentials"][1], "password": canaries.other_forge},
            ]
        ),
    }
    del settings["forges"]
    return start_server(env=env, **settings)


def served_texts(server: ServiceProcess, build_id: str) -> dict[str, str]:
    """What the service serves and stores about a build: the API's answers, the page,
    and the store's rows (log lines and error)."""
    with server.client() as client:
        texts = {
            "GET /api/v1/builds/{id}": client.get(f"/api/v1/builds/{build_id}").text,
            "GET /api/v1/builds/{id}/logs": client.get(f"/api/v1/builds/{build_id}/logs").text,
            "GET /api/v1/builds": client.get("/api/v1/builds").text,
            "GET /": client.get("/").text,
            "GET /?build={id}": client.get("/", params={"build": build_id}).text,
        }
    with store_of(server) as store:
        build = store.get(build_id)
        assert build is not None
        texts["stored error"] = build.error or ""
        texts["stored log"] = "\n".join(message for _, message in store.logs(build_id))
    return texts


def assert_no_canary(texts: dict[str, str], canaries: Canaries) -> None:
    leaks = [
        f"{what} in {where}"
        for where, text in texts.items()
        for what, secret in canaries.forbidden().items()
        if secret in text
    ]
    assert not leaks, leaks


def stream_build(server: ServiceProcess, url: str) -> tuple[str, list[dict[str, Any]]]:
    """Build ``url``'s main branch through the BinderHub stream; the build id and the
    stream's events."""
    events = stream(server, git_spec(url, "main"))
    (build,) = [b for b in records(server) if b.repo == url]
    with server.client() as client:
        wait_for_state(client, build.id, {"built", "failed"}, timeout=300)
    return build.id, events


HOSTILE = {
    "environ": {"runtime.txt": "/proc/self/environ"},
    "environ-apt": {"apt.txt": "/proc/self/environ"},
    "host-file": {"runtime.txt": "{host_file}"},
    "docker-config": {"runtime.txt": "../../docker/config.json"},
    "git-credentials": {"runtime.txt": "../../git/config"},
    "binder-dir": {"binder": "{host_dir}"},
    "chain": {"runtime.txt": "a", "a": "b/../c", "c": "/proc/self/environ", "b/keep": "."},
}
"""Symlinks of a repository without a Dockerfile, each read by repo2docker on the host
before the build starts (``runtime.txt`` is quoted whole when it cannot be parsed)."""


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_symlinks_out_of_the_checkout_leak_nothing(
    case: str,
    git_server: GitServer,
    private_git: HttpGitServer,
    auth_registry: Registry,
    buildkitd: BuildKitDaemon,  # noqa: F811
    start_server: StartServer,
    canaries: Canaries,
    unique: str,
) -> None:
    host_dir = canaries.host_file.parent / "binder"
    host_dir.mkdir()
    (host_dir / "runtime.txt").symlink_to(canaries.host_file)
    name = f"hostile-{case}-{unique}"
    repo = git_server.create_repo(name, {"README.md": "hostile\n"})
    links = {
        path: target.format(host_file=canaries.host_file, host_dir=host_dir)
        for path, target in HOSTILE[case].items()
    }
    commit_links(repo, links)
    server = start_isolated_server(
        start_server,
        canaries,
        private_git,
        auth_registry,
        unique,
        repo2docker=CURRENT,
        daemon=buildkitd,
    )
    build_id, events = stream_build(server, private_git.url(name))
    texts = served_texts(server, build_id)
    texts["BinderHub stream"] = json.dumps(events)
    assert_no_canary(texts, canaries)
    # the private repository was cloned with its credential, and the log says which
    # links were removed before repo2docker looked at the checkout
    log = texts["stored log"]
    assert "Picked CheckedGit content provider" in log, log
    first = next(iter(HOSTILE[case]))
    assert f"removed the symlink {first} -> " in log, log


def test_legacy_repo2docker_neutralises_the_links_too(
    git_server: GitServer,
    private_git: HttpGitServer,
    auth_registry: Registry,
    start_server: StartServer,
    canaries: Canaries,
    unique: str,
) -> None:
    name = f"hostile-legacy-{unique}"
    repo = git_server.create_repo(name, {"README.md": "hostile\n"})
    commit_links(repo, {"runtime.txt": "/proc/self/environ", "apt.txt": str(canaries.host_file)})
    server = start_isolated_server(
        start_server,
        canaries,
        private_git,
        auth_registry,
        unique,
        repo2docker={},  # the fixture's 2024.7.0, on the Docker daemon
        daemon=None,
    )
    build_id, events = stream_build(server, private_git.url(name))
    texts = served_texts(server, build_id)
    texts["BinderHub stream"] = json.dumps(events)
    assert_no_canary(texts, canaries)
    assert "removed the symlink runtime.txt -> /proc/self/environ" in texts["stored log"]


def test_a_private_repository_with_hostile_links_builds_and_pushes(
    git_server: GitServer,
    private_git: HttpGitServer,
    auth_registry: Registry,
    buildkitd: BuildKitDaemon,  # noqa: F811
    base_image: str,  # noqa: F811
    start_server: StartServer,
    canaries: Canaries,
    unique: str,
) -> None:
    name = f"hostile-built-{unique}"
    repo = git_server.create_repo(
        name, {"Dockerfile": dockerfile("COPY . /srv/repo/", base=base_image), "a.txt": "a\n"}
    )
    commit_links(
        repo,
        {
            "environ": "/proc/self/environ",
            "host": str(canaries.host_file),
            "credentials": "../../git/config",
            "push": "../../docker/config.json",
            "inside": "a.txt",
        },
    )
    server = start_isolated_server(
        start_server,
        canaries,
        private_git,
        auth_registry,
        unique,
        repo2docker=CURRENT,
        daemon=buildkitd,
    )
    build_id, events = stream_build(server, private_git.url(name))
    texts = served_texts(server, build_id)
    texts["BinderHub stream"] = json.dumps(events)
    with server.client() as client:
        answer = client.get(f"/api/v1/builds/{build_id}").json()
    assert answer["state"] == "built", answer
    assert events[-1]["phase"] == "ready"
    assert_no_canary(texts, canaries)
    log = texts["stored log"]
    for link in ("environ", "host", "credentials", "push"):
        assert f"removed the symlink {link} -> " in log
    assert "removed the symlink inside" not in log
    # every request to the git server carried the one credential that covers it
    assert private_git.authorizations
    assert all(auths == [basic(BOT, canaries.forge)] for auths in private_git.authorizations)


PROBE = r"""
set -e
if [ "$1" = --version ]; then echo 2026.4.0; exit 0; fi
env | sort | sed 's/^/env: /'
echo "git-config-mode: $(stat -c %a "$GIT_CONFIG_GLOBAL")"
sed 's/^/git-config: /' "$GIT_CONFIG_GLOBAL"
echo "docker-config-mode: $(stat -c %a "$DOCKER_CONFIG/config.json")"
git ls-remote "${@: -1}" HEAD | sed 's/^/ls-remote: /'
exit 3
"""
"""Stands in for repo2docker: shows the build's environment and credential files, and
that git reaches the private repository with them; then fails."""


def test_repo2docker_gets_an_allow_listed_environment_and_one_credential_file(
    git_server: GitServer,
    private_git: HttpGitServer,
    auth_registry: Registry,
    buildkitd: BuildKitDaemon,  # noqa: F811
    start_server: StartServer,
    canaries: Canaries,
    unique: str,
) -> None:
    name = f"probe-{unique}"
    repo = git_server.create_repo(name, {"README.md": "probe\n"})
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    server = start_isolated_server(
        start_server,
        canaries,
        private_git,
        auth_registry,
        unique,
        repo2docker={"version": "2026.4.0", "command": ["bash", "-c", PROBE, "repo2docker"]},
        daemon=buildkitd,
    )
    with server.client() as client:
        created = client.post("/api/v1/builds", json={"repo": private_git.url(name), "ref": "main"})
        assert created.status_code == 202, created.text
        build_id = created.json()["id"]
        wait_for_state(client, build_id, {"failed"})
        logs = client.get(f"/api/v1/builds/{build_id}/logs").json()
    lines = [line["message"] for line in logs["lines"]]
    env = dict(
        line.removeprefix("env: ").split("=", 1) for line in lines if line.startswith("env: ")
    )
    # nothing of the service's environment but the allow-list
    service_only = {"BHS_TEST_CANARY", "BINDERHUB_SERVICE_CONFIG", "PYTEST_CURRENT_TEST"}
    assert not service_only & set(env), env
    assert not [k for k in env if k.startswith("BINDERHUB_SERVICE_") and k != BUILD_ID_ENV]
    assert not [k for k in env if k.startswith(("GIT_CONFIG_KEY", "GIT_CONFIG_VALUE"))]
    assert env["PATH"] == os.environ["PATH"]
    # its own files, in its working directory (shown as a placeholder in the log)
    assert env["TMPDIR"] == f"{BUILD_DIR}/tmp"
    assert env["HOME"] == f"{BUILD_DIR}/home"
    assert env["DOCKER_CONFIG"] == f"{BUILD_DIR}/docker"
    assert env["GIT_CONFIG_GLOBAL"] == f"{BUILD_DIR}/git/config"
    assert env["BUILDKIT_HOST"] == BUILDKIT  # the service's internals are not shown
    assert "git-config-mode: 600" in lines
    assert "docker-config-mode: 600" in lines
    config = [
        line.removeprefix("git-config: ") for line in lines if line.startswith("git-config: ")
    ]
    # only the credential that covers the repository, its header masked in the log
    assert config == [
        f'[http "http://127.0.0.1:{private_git.port}"]',
        "\textraHeader = Authorization: Basic ***",
    ]
    # and with it git reads the private repository
    assert f"ls-remote: {sha}\tHEAD" in lines
    state_dir = Path(yaml.safe_load(server.config.read_text())["state_path"]).parent
    assert not (state_dir / "builds" / build_id).exists()  # removed with the build
    texts = served_texts(server, build_id)
    assert_no_canary(texts, canaries)
