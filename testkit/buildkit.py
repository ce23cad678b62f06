"""BuildKit for the tests and benchmarks: a buildkitd of their own (with or without
mTLS), and the local base image pushed into a registry (BuildKit pulls ``FROM`` images
from registries; it cannot see Docker's)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .components import BASE_IMAGE, DOCKER, ROOT, Registry, free_port, wait_until

BUILDKIT_VERSION = "v0.34.2"  # scripts/ensure-buildkit.sh


def buildkit_bin(name: str) -> Path:
    """A program of scripts/ensure-buildkit.sh's cache (run that first)."""
    cache = Path(os.environ.get("BHS_CACHE_ROOT") or Path.home() / ".cache/binderhub-service")
    return cache / f"buildkit-{BUILDKIT_VERSION}" / "bin" / name


@dataclass
class BuildKitDaemon:
    """A buildkitd of our own (scripts/ensure-buildkitd.sh with its own state directory,
    so its cache starts empty)."""

    address: str
    directory: Path
    pid: int
    process: subprocess.Popen[bytes] | None = None  # when started here, not by the script

    def buildctl(self, *args: str) -> str:
        return subprocess.run(
            [buildkit_bin("buildctl"), "--addr", self.address, *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def prune(self) -> None:
        """Empty the daemon's local cache (what a builder that never saw a repository has)."""
        self.buildctl("prune", "--all")

    def log(self) -> str:
        return (self.directory / "buildkitd.log").read_text(errors="replace")[-20000:]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{self.pid}").exists(), timeout=30)


def start_buildkitd(directory: Path) -> BuildKitDaemon:
    """A new buildkitd with its state in ``directory`` (root; builds it first if needed)."""
    out = subprocess.run(
        [ROOT / "scripts" / "ensure-buildkitd.sh"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BUILDKITD_DIR": str(directory)},
    ).stdout
    pid = int((directory / "buildkitd.pid").read_text())
    return BuildKitDaemon(out.strip().splitlines()[-1], directory, pid)


def push_base_image(registry: Registry, config_dir: Path) -> str:
    """Push the local base image into ``registry`` (BuildKit pulls ``FROM`` images from
    registries; it cannot see Docker's) and return its name there. ``config_dir``
    becomes the docker CLI's configuration (with the registry's credentials)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    auths = {}
    if registry.auth is not None:
        token = base64.b64encode(":".join(registry.auth).encode()).decode()
        auths = {registry.host: {"auth": token}}
    (config_dir / "config.json").write_text(json.dumps({"auths": auths}))
    name = f"{registry.host}/{BASE_IMAGE}"
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    subprocess.run([DOCKER, "tag", BASE_IMAGE, name], check=True, env=env)
    subprocess.run([DOCKER, "push", name], check=True, env=env, capture_output=True)
    return name


def start_tls_buildkitd(directory: Path, certs: Path) -> BuildKitDaemon:
    """A buildkitd on ``tcp://127.0.0.1:<free port>`` that requires mTLS with the
    ``server.pem``/``server-key.pem``/``ca.pem`` of ``certs`` (``testkit.certs``)."""
    subprocess.run([ROOT / "scripts" / "ensure-buildkit.sh"], check=True)
    directory.mkdir(parents=True, exist_ok=True)
    address = f"tcp://127.0.0.1:{free_port()}"
    config = directory / "buildkitd.toml"
    config.write_text(
        f'root = "{directory / "root"}"\n'
        f'[grpc]\n  address = ["{address}"]\n'
        f'  [grpc.tls]\n    cert = "{certs / "server.pem"}"\n'
        f'    key = "{certs / "server-key.pem"}"\n    ca = "{certs / "ca.pem"}"\n'
        "[worker.oci]\n  enabled = true\n[worker.containerd]\n  enabled = false\n"
    )
    with (directory / "buildkitd.log").open("ab") as log:
        process = subprocess.Popen(
            [buildkit_bin("buildkitd"), "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    (directory / "buildkitd.pid").write_text(str(process.pid))
    daemon = BuildKitDaemon(address, directory, process.pid, process)
    wait_until(lambda: "running server on" in daemon.log())
    return daemon
