"""The pure parts of builder/'s repo2docker engine: which buildx builder the
environment asks for, and how it is created."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from binderhub_service_builder.builders import (
    BuilderSetupError,
    check_tls_files,
    create_args,
    docker_config_dir,
    probe_daemon,
    remote_builder,
)


def test_no_buildkit_host_means_the_current_builder() -> None:
    assert remote_builder({}) is None
    assert remote_builder({"BUILDKIT_HOST": "  "}) is None


def test_tcp_builder_without_tls() -> None:
    builder = remote_builder({"BUILDKIT_HOST": "tcp://buildkitd:1234"})
    assert builder is not None
    assert builder.name.startswith("bhs-")
    assert len(builder.name) == 16
    assert create_args(builder) == [
        "buildx",
        "create",
        "--name",
        builder.name,
        "--driver",
        "remote",
        "tcp://buildkitd:1234",
    ]


def test_mtls_files_and_servername_become_driver_options() -> None:
    builder = remote_builder(
        {
            "BUILDKIT_HOST": "tcp://10.0.0.7:1234",
            "BUILDKIT_TLS_DIR": "/etc/buildkit/tls",
            "BUILDKIT_TLS_SERVERNAME": "buildkitd.builds.svc",
        }
    )
    assert builder is not None
    assert create_args(builder)[-9:] == [
        "--driver-opt",
        "cacert=/etc/buildkit/tls/ca.pem",
        "--driver-opt",
        "cert=/etc/buildkit/tls/cert.pem",
        "--driver-opt",
        "key=/etc/buildkit/tls/key.pem",
        "--driver-opt",
        "servername=buildkitd.builds.svc",
        "tcp://10.0.0.7:1234",
    ]


def test_each_setting_gets_a_builder_of_its_own() -> None:
    names = set()
    for env in (
        {"BUILDKIT_HOST": "unix:///run/buildkit/buildkitd.sock"},
        {"BUILDKIT_HOST": "tcp://a:1"},
        {"BUILDKIT_HOST": "tcp://a:1", "BUILDKIT_TLS_DIR": "/tls"},
        {"BUILDKIT_HOST": "tcp://a:1", "BUILDKIT_TLS_DIR": "/tls", "BUILDKIT_TLS_SERVERNAME": "x"},
    ):
        builder = remote_builder(env)
        assert builder is not None
        names.add(builder.name)
    assert len(names) == 4
    again = remote_builder({"BUILDKIT_HOST": "tcp://a:1"})
    assert again is not None
    assert again.name in names


@pytest.mark.parametrize(
    "address", ["buildkitd:1234", "https://x:1", "tcp://", "docker-container://b"]
)
def test_bad_addresses_are_named(address: str) -> None:
    with pytest.raises(BuilderSetupError, match=r"BUILDKIT_HOST=.* is not a BuildKit address"):
        remote_builder({"BUILDKIT_HOST": address})


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(BuilderSetupError, match=r"lacks readable cert\.pem, key\.pem"):
        check_tls_files({"BUILDKIT_TLS_DIR": str(tmp_path)})
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    check_tls_files({"BUILDKIT_TLS_DIR": str(tmp_path)})
    check_tls_files({})


def test_docker_config_dir_defaults_to_the_home_directory() -> None:
    assert docker_config_dir({"DOCKER_CONFIG": "/run/build/docker"}) == Path("/run/build/docker")
    assert docker_config_dir({}) == Path.home() / ".docker"


def test_a_daemon_that_refuses_at_first_is_tried_again() -> None:
    """A daemon just starting, or a NetworkPolicy enforcer that has not yet admitted a new
    build pod, refuses the first connections (issue 23): the probe tries again each second
    (the sleep here is a stand-in that makes the daemon listen), for a while only."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))  # bound, not listening yet: connections are refused
    port = server.getsockname()[1]
    builder = remote_builder({"BUILDKIT_HOST": f"tcp://127.0.0.1:{port}"})
    assert builder is not None
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            server.listen()

    with server:
        probe_daemon(builder, {}, timeout=5, wait=60, sleep=sleep)
    assert slept == [1.0, 1.0]
    # nothing listens at all: named after the wait
    with pytest.raises(BuilderSetupError, match=r"is unreachable: .*refused"):
        probe_daemon(builder, {}, timeout=5, wait=0, sleep=sleep)


def test_a_daemon_in_the_pod_is_asked_again_every_tenth_of_a_second(tmp_path: Path) -> None:
    """The rootless daemon of a build pod (a sidecar started beside the builder, not before
    it) is usually ready within half a second: its Unix socket is tried every 0.1 s, not
    every second, so the builder does not wait a whole second for a daemon that is up."""
    path = tmp_path / "buildkitd.sock"
    builder = remote_builder({"BUILDKIT_HOST": f"unix://{path}"})
    assert builder is not None
    slept: list[float] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # no socket at first; then one that listens
            server.bind(str(path))
            server.listen()

    with server:
        probe_daemon(builder, {}, timeout=5, wait=60, sleep=sleep)
    assert slept == [0.1, 0.1]
