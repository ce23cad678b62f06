"""Releases for the cluster tests: ``make release`` into a registry of the test session, as a
maintainer (or the release workflow) runs it, and the images and the OCI chart it pushed.

The registry listens on 127.0.0.1 and the node's containerd pulls from it over plain HTTP
(a ``certs.d`` entry while it runs), so pods run the released images as any cluster pulls
them from a public registry: by name, ``IfNotPresent``. The builds get the host's CA bundle as
the BuildKit secret ``ca-certificates`` (HTTPS here goes through a proxy that intercepts it:
the way a user behind such a proxy builds), and ``BASE_IMAGE`` the local Debian image.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit.components import start_registry

ROOT = Path(__file__).resolve().parents[2]
CONTAINERD_HOSTS = Path(
    os.environ.get("BHS_CLUSTER_STATE", "/tmp/binderhub-service-cluster"), "containerd", "certs.d"
)
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DOCKER = "/usr/bin/docker"
RELEASE_TIMEOUT_S = 3600  # cold: the builder's Go stage compiles buildx (minutes on 2 cores)


@dataclass(frozen=True)
class Release:
    """What ``make release REGISTRY=registry VERSION=version`` pushed."""

    registry: str
    version: str

    @property
    def chart(self) -> str:
        """The chart's OCI reference (without the version: ``helm ... --version``)."""
        return f"oci://{self.registry}/charts/binderhub-service"

    @property
    def service_image(self) -> str:
        return f"{self.registry}/binderhub-service:{self.version}"

    @property
    def builder_image(self) -> str:
        return f"{self.registry}/binderhub-service-builder:{self.version}"


def make_release(registry: str, version: str, helm: str, base_image: str) -> Release:
    """Run ``make release`` from this checkout; raises ``AssertionError`` with its output
    when it fails."""
    env = {
        **os.environ,
        "HELM": helm,
        "CA_CERTIFICATES": str(CA_BUNDLE) if CA_BUNDLE.exists() else "",
    }
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "release",
            f"REGISTRY={registry}",
            f"VERSION={version}",
            f"BASE_IMAGE={base_image}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=RELEASE_TIMEOUT_S,
    )
    assert result.returncode == 0, f"make release failed:\n{result.stdout}\n{result.stderr}"
    return Release(registry, version)


def forget_local_tags(release: Release) -> None:
    """Remove the release's tags from the Docker daemon (the images stay while anything
    else names them): a session's registry is gone after it."""
    subprocess.run(
        [DOCKER, "image", "rm", release.service_image, release.builder_image],
        capture_output=True,
        check=False,
    )


@contextlib.contextmanager
def plain_http_for_node(host: str) -> Iterator[None]:
    """Let the node's containerd pull from ``host`` (``ip:port``) over plain HTTP while the
    block runs (its hosts directory is read at each pull)."""
    folder = CONTAINERD_HOSTS / host
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.toml").write_text(
        f'server = "http://{host}"\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    try:
        yield
    finally:
        (folder / "hosts.toml").unlink()
        folder.rmdir()


@contextlib.contextmanager
def release_registry(directory: Path) -> Iterator[str]:
    """A registry for releases on 127.0.0.1 (the Docker daemon pushes to loopback registries
    over plain HTTP; helm is told so by ``make release``), which the node pulls from.
    Yields its ``host:port``."""
    registry = start_registry(directory)
    try:
        with plain_http_for_node(registry.host):
            yield registry.host
    finally:
        registry.stop()


BENCH_REGISTRY, BENCH_VERSION = "127.0.0.1:5000/bench", "0.99.0"


def bench_release(helm: str) -> Release:
    """``make release`` into the node's registry (127.0.0.1:5000, started by
    scripts/ensure-registry.sh when none answers), with the images also loaded into the
    node and the chart's default BuildKit image's stand-in in place: for the benchmarks."""
    subprocess.run([str(ROOT / "scripts" / "ensure-registry.sh")], check=True, timeout=600)
    made = make_release(BENCH_REGISTRY, BENCH_VERSION, helm, "local/debian:bookworm")
    load = ROOT / "tests" / "cluster" / "load-image.sh"
    subprocess.run([str(load), made.service_image, made.builder_image], check=True, timeout=900)
    standin = ROOT / "tests" / "cluster" / "standins" / "moby-buildkit" / "ensure.sh"
    subprocess.run([str(standin), "--load"], check=True, timeout=3600, stdout=subprocess.DEVNULL)
    return made
