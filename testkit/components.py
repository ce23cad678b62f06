"""Real components for the integration tests and the benchmarks: registries, a git
server, the service as a process.

Each is a real server process on 127.0.0.1 (Debian's docker-registry, git daemon),
started on a free port and stopped afterwards. The Docker daemon and the base image
are shared and made sure of by scripts/ensure-*.sh (``make test`` runs them).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DOCKER = "/usr/bin/docker"
BASE_IMAGE = "local/debian:bookworm"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


ROOT = Path(__file__).resolve().parents[1]
LEGACY_REPO2DOCKER = "2024.7.0"


@functools.cache
def legacy_repo2docker() -> dict[str, Any]:
    """The ``repo2docker`` settings of builds with repo2docker 2024.7.0 (Docker's legacy
    builder), from the virtualenv ``scripts/ensure-repo2docker.sh`` makes (once).
    The tests written for 2024.7.0 name it explicitly; the service's default is 2026.4."""
    out = subprocess.run(
        [ROOT / "scripts" / "ensure-repo2docker.sh", LEGACY_REPO2DOCKER],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    python = out.strip().splitlines()[-1]
    return {"version": LEGACY_REPO2DOCKER, "command": [python, "-m", "repo2docker"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: object, timeout: float = 30.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {check!r}")
        time.sleep(interval)


@dataclass
class Registry:
    host: str
    log_path: Path
    process: subprocess.Popen[bytes]
    auth: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_registry(
    directory: Path,
    auth: tuple[str, str] | None = None,
    auth_block: str = "",
    port: int | None = None,
    listen: str = "127.0.0.1",
    delete: bool = True,
) -> Registry:
    """A real registry (distribution 2.8) with filesystem storage in ``directory``.

    ``auth`` turns on htpasswd (Basic) authentication; ``auth_block`` is any other
    ``auth:`` section of the registry's configuration. ``port``: a free one unless
    given (to start a stopped registry again where it was). ``listen``: the address it
    listens on (``0.0.0.0``: also the test cluster's pods, at the node's address); the
    returned ``Registry.host`` is on 127.0.0.1 either way. ``delete``: whether it
    deletes manifests (``storage.delete.enabled``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if auth is not None:
        htpasswd = directory / "htpasswd"
        hashed = subprocess.run(
            ["htpasswd", "-Bbn", auth[0], auth[1]], check=True, capture_output=True, text=True
        ).stdout
        htpasswd.write_text(hashed)
        auth_block = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"  delete:\n    enabled: {'true' if delete else 'false'}\n"
        f"http:\n  addr: {listen}:{port}\n{auth_block}"
    )
    log_path = directory / "registry.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError as e:
            return e.code == 401
        return True

    wait_until(answers)
    return Registry(f"127.0.0.1:{port}", log_path, process, auth)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    ).stdout.strip()


@dataclass
class GitRepo:
    path: Path
    url: str

    def commit(self, files: dict[str, str], message: str = "change", branch: str = "main") -> str:
        """Write ``files`` on ``branch`` (created if new) and commit; returns the SHA."""
        current = git("symbolic-ref", "--short", "HEAD", cwd=self.path)
        if current != branch:
            git("checkout", "-q", "-B", branch, cwd=self.path)
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)

    def tag(self, name: str, annotated: bool = False) -> None:
        if annotated:
            git("tag", "-a", "-m", name, name, cwd=self.path)
        else:
            git("tag", name, cwd=self.path)


@dataclass
class GitServer:
    """``git daemon`` serving every repository under ``base`` as git://127.0.0.1:PORT/NAME."""

    base: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    repos: dict[str, GitRepo] = field(default_factory=dict)

    def create_repo(self, name: str, files: dict[str, str]) -> GitRepo:
        path = self.base / name
        path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=path)
        repo = GitRepo(path, f"git://127.0.0.1:{self.port}/{name}")
        repo.commit(files, "initial commit")
        self.repos[name] = repo
        return repo

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_git_server(base: Path) -> GitServer:
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = base.parent / "git-daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--verbose",
                f"--base-path={base}",
                "--export-all",
                "--listen=127.0.0.1",
                f"--port={port}",
                str(base),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_until(answers)
    return GitServer(base, port, log_path, process)


def dockerfile(*steps: str, base: str = BASE_IMAGE) -> str:
    """A repo2docker-buildable Dockerfile on the local base image (nothing is pulled).

    Its first step sets an environment variable unique to this call, so that no step
    after it is ever taken from a build cache: a test sees the same build on a fresh
    machine and on one that ran the suite before (issue 12, item 8). Not a LABEL: under
    BuildKit a label changes only the image's config, so the RUN steps after it were
    still taken from the cache; the environment is part of every RUN step's cache key.
    """
    fresh = f"ENV BINDERHUB_SERVICE_TEST_BUILD={uuid.uuid4().hex}"
    lines = [f"FROM {base}", fresh, "ARG NB_USER", "ARG NB_UID", *steps]
    return "\n".join(lines) + "\n"


def image_in_docker(image: str) -> bool:
    return subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode == 0


@dataclass
class ServiceProcess:
    """``binderhub-service serve`` as its own process, as users run it."""

    config: Path
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    token: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Added to this process's environment."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = "default") -> httpx.Client:
        """An HTTP client for the service, with its read-write token unless told."""
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "binderhub-service"),
                    "serve",
                    "--config",
                    str(self.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{self.log()}")
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)

        wait_until(healthy)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]


MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
"""The manifest types ``in_registry`` accepts: a registry answers 404 for a manifest
whose type the client does not accept, and BuildKit pushes OCI ones."""


def in_registry(base_url: str, image: str) -> bool:
    """Whether the registry at ``base_url`` (``http://host:port``) has ``image``
    (``host/name:tag``), with a manifest of any of ``MANIFEST_TYPES``."""
    name, _, tag = image.partition("/")[2].rpartition(":")
    response = httpx.head(
        f"{base_url}/v2/{name}/manifests/{tag}",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    return response.status_code == 200
