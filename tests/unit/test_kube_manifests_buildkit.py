"""Build Jobs of the BuildKit builder (``kubernetes.builder: buildkit``), pure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobs.executors.kubernetes import manifests, pod
from jobs.repo2docker.command import cache_ref
from jobs.settings import ConfigError, Settings, load_settings

from .test_kube_manifests import make_build, validate

GOLDEN = Path(__file__).parent / "golden" / "build_job_buildkit.json"
HOST = "tcp://bhs-buildkit.builds.svc:1234"


def buildkit_settings(**kubernetes: Any) -> Settings:
    values: dict[str, Any] = {
        "executor": "kubernetes",
        "image_prefix": "registry.example.org/binder-",
        "kubernetes": {
            "namespace": "builds",
            "instance": "bhs",
            "builder": "buildkit",
            "buildkit_host": HOST,
            "buildkit_tls_secret": "bhs-buildkit-client",
            "builder_image": "registry.example.org/repo2docker:2026.4.0",
            "run_as_user": 1000,
            "docker_config_secret": {"name": "bhs", "key": "docker-config.json"},
            **kubernetes,
        },
        "registry": {"username": "pusher", "password": "registry-password-SECRET"},
    }
    return Settings.model_validate(values)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value") for item in pod_spec(job)["containers"][0]["env"]}


def test_buildkit_job_matches_the_golden_file() -> None:
    job = manifests.make_build_job(make_build(), buildkit_settings(), "builds")
    validate(job)
    rendered = json.dumps(job, indent=2, sort_keys=True) + "\n"
    if not GOLDEN.exists():  # pragma: no cover - writing a new golden file is deliberate
        GOLDEN.write_text(rendered)
        pytest.fail(f"wrote {GOLDEN}; check it and commit it")
    assert rendered == GOLDEN.read_text()


def test_buildkit_build_pods_have_no_host_path_no_privilege_and_run_as_non_root() -> None:
    job = manifests.make_build_job(make_build(), buildkit_settings(), "builds")
    pod = pod_spec(job)
    assert all("hostPath" not in volume for volume in pod["volumes"])
    (container,) = pod["containers"]
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    # the docker-socket builder of the same settings mounts the socket: the check can fail
    socket = manifests.make_build_job(
        make_build(), buildkit_settings(builder="docker-socket"), "builds"
    )
    assert any("hostPath" in volume for volume in pod_spec(socket)["volumes"])


def test_buildkit_build_pods_get_the_daemon_the_certificate_and_the_cache() -> None:
    build = make_build()
    job = manifests.make_build_job(build, buildkit_settings(), "builds")
    env = env_of(job)
    assert env["BUILDKIT_HOST"] == HOST
    assert env["BUILDKIT_TLS_DIR"] == pod.BUILDKIT_TLS_DIR
    ref = cache_ref(build.image)
    assert json.loads(env[pod.BUILDX_ARGS_ENV]) == [
        "--cache-from",
        f"type=registry,ref={ref}",
        "--cache-to",
        f"type=registry,ref={ref},mode=max,ignore-error=true",
    ]
    (tls,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "buildkit-tls"]
    assert tls["secret"]["secretName"] == "bhs-buildkit-client"
    args = pod_spec(job)["containers"][0]["args"]
    assert args[args.index("--engine") + 1] == "buildkit"


def test_without_the_cache_or_the_certificate_nothing_of_them_is_in_the_job() -> None:
    settings = buildkit_settings(buildkit_tls_secret=None, buildkit_tls_servername="bk.example")
    settings = settings.model_copy(
        update={"buildkit": settings.buildkit.model_copy(update={"cache": False})}
    )
    job = manifests.make_build_job(make_build(), settings, "builds")
    validate(job)
    env = env_of(job)
    assert json.loads(env[pod.BUILDX_ARGS_ENV]) == []
    assert "BUILDKIT_TLS_DIR" not in env
    assert env["BUILDKIT_TLS_SERVERNAME"] == "bk.example"
    assert all(v["name"] != "buildkit-tls" for v in pod_spec(job)["volumes"])


def test_the_config_map_reads_the_builds_buildx_arguments_from_the_environment() -> None:
    """The ConfigMap's file, run as repo2docker runs it (traitlets' Python config loader)."""
    settings = buildkit_settings()
    config_map = manifests.make_config_map(settings, "builds")
    validate(config_map)
    text = config_map["data"][pod.CONFIG_FILE]
    job = manifests.make_build_job(make_build(), settings, "builds")
    arguments = env_of(job)[pod.BUILDX_ARGS_ENV]
    loader = (
        "import sys, json\n"
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "config = PyFileConfigLoader(sys.argv[1]).load_config()\n"
        "print(json.dumps(list(config.DockerEngine.extra_buildx_build_args)))\n"
    )
    config_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"bhs-r2d-{os.getpid()}.py"
    config_file.write_text(text)
    try:
        out = subprocess.run(
            [sys.executable, "-c", loader, str(config_file)],
            env={**os.environ, pod.BUILDX_ARGS_ENV: arguments},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        config_file.unlink()
    assert json.loads(out) == json.loads(arguments)
    # the docker-socket builder's file has no such line
    plain = manifests.make_config_map(buildkit_settings(builder="docker-socket"), "builds")
    assert pod.BUILDX_ARGS_ENV not in plain["data"][pod.CONFIG_FILE]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kubernetes": {"builder": "buildkit"}}, "kubernetes.buildkit_host is needed"),
        (
            {"kubernetes": {"builder": "buildkit", "buildkit_host": "https://bk:1234"}},
            "kubernetes.buildkit_host",
        ),
        (
            {
                "repo2docker": {"version": "2024.7.0"},
                "kubernetes": {"builder": "buildkit", "buildkit_host": HOST},
            },
            "needs repo2docker 2025.8 or later",
        ),
    ],
)
def test_a_buildkit_builder_without_what_it_needs_is_refused(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, executor="kubernetes", **values)
