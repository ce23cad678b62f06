"""Build Jobs of the rootless BuildKit builder (``kubernetes.builder: buildkit-rootless``,
issue 24), pure: the daemon is a native sidecar of the build pod, the builder reaches it over
the pod's socket, and what Pod Security ``baseline`` requires holds of every container (the
API server's judgement is tests/cluster/test_builder_levels.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobs.executors.kubernetes import manifests, pod, rootless
from jobs.repo2docker.command import cache_ref
from jobs.settings import Settings

from .test_kube_manifests import make_build, validate
from .test_kube_manifests_buildkit import buildkit_settings, env_of, pod_spec

GOLDEN = Path(__file__).parent / "golden" / "build_job_buildkit_rootless.json"
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
"""What Pod Security "baseline" lets a container add (the Pod Security Standards)."""


def rootless_settings(**rootless_values: Any) -> Settings:
    return buildkit_settings(
        builder="buildkit-rootless",
        buildkit_host=None,
        buildkit_tls_secret=None,
        rootless_buildkit={"config_map": "bhs-buildkit-rootless", **rootless_values},
    )


def test_rootless_job_matches_the_golden_file() -> None:
    job = manifests.make_build_job(make_build(), rootless_settings(), "builds")
    validate(job)
    rendered = json.dumps(job, indent=2, sort_keys=True) + "\n"
    if not GOLDEN.exists():  # pragma: no cover - writing a new golden file is deliberate
        GOLDEN.write_text(rendered)
        pytest.fail(f"wrote {GOLDEN}; check it and commit it")
    assert rendered == GOLDEN.read_text()


def test_the_daemon_is_a_sidecar_the_builder_reaches_over_the_pods_socket() -> None:
    build = make_build()
    job = manifests.make_build_job(build, rootless_settings(), "builds")
    spec = pod_spec(job)
    (daemon,) = spec["initContainers"]
    assert daemon["restartPolicy"] == "Always"  # a native sidecar: ends with the pod
    assert daemon["image"] == "docker.io/moby/buildkit:v0.34.2-rootless"
    assert "--oci-worker-no-process-sandbox" in daemon["args"]
    # started beside the builder, which waits for the socket itself (no probe to wait for)
    assert "startupProbe" not in daemon
    assert "readinessProbe" not in daemon
    env = env_of(job)
    assert env["BUILDKIT_HOST"] == rootless.SOCKET
    assert "BUILDKIT_TLS_DIR" not in env
    ref = cache_ref(build.image)
    assert f"type=registry,ref={ref}" in json.loads(env[pod.BUILDX_ARGS_ENV])
    args = spec["containers"][0]["args"]
    assert args[args.index("--engine") + 1] == "buildkit"
    socket_mounts = [
        m["mountPath"]
        for c in (daemon, spec["containers"][0])
        for m in c["volumeMounts"]
        if m["name"] == "buildkit-socket"
    ]
    assert socket_mounts == [rootless.SOCKET_DIR, rootless.SOCKET_DIR]
    (config,) = [v for v in spec["volumes"] if v["name"] == "buildkit-config"]
    assert config["configMap"]["name"] == "bhs-buildkit-rootless"
    # the ConfigMap's file reads the build's buildx arguments, as with buildkit
    text = manifests.make_config_map(rootless_settings(), "builds")["data"][pod.CONFIG_FILE]
    assert pod.BUILDX_ARGS_ENV in text


def test_every_container_keeps_to_baseline_and_only_the_daemon_leaves_restricted() -> None:
    spec = pod_spec(manifests.make_build_job(make_build(), rootless_settings(), "builds"))
    assert all("hostPath" not in v for v in spec["volumes"])
    assert "seccompProfile" not in spec["securityContext"]  # the node's default for the daemon
    for container in spec["initContainers"] + spec["containers"]:
        context = container["securityContext"]
        assert context["privileged"] is False
        assert context.get("runAsNonRoot") is not False
        assert set(context["capabilities"].get("add", [])) <= BASELINE_CAPABILITIES
        assert context.get("seccompProfile", {}).get("type") != "Unconfined"
    (builder,) = spec["containers"]
    assert builder["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert builder["securityContext"]["allowPrivilegeEscalation"] is False
    (daemon,) = spec["initContainers"]
    assert daemon["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": ["SETUID", "SETGID"],
    }
    # the shared daemon's build pods keep the pod-wide profile
    shared = pod_spec(manifests.make_build_job(make_build(), buildkit_settings(), "builds"))
    assert shared["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "initContainers" not in shared


def test_without_a_config_map_the_daemon_reads_the_images_defaults() -> None:
    settings = rootless_settings(config_map=None, resources={"limits": {"memory": "4Gi"}})
    job = manifests.make_build_job(make_build(), settings, "builds")
    validate(job)
    spec = pod_spec(job)
    assert all(v["name"] != "buildkit-config" for v in spec["volumes"])
    (daemon,) = spec["initContainers"]
    assert daemon["resources"] == {"limits": {"memory": "4Gi"}}


def test_a_rootless_job_leaves_other_builders_pods_as_they_were() -> None:
    # the builder's profile is its own copy: the shared security context stays unchanged
    before = pod_spec(manifests.make_build_job(make_build(), buildkit_settings(), "builds"))
    manifests.make_build_job(make_build(), rootless_settings(), "builds")
    after = pod_spec(manifests.make_build_job(make_build(), buildkit_settings(), "builds"))
    assert after == before
    assert "seccompProfile" not in after["containers"][0]["securityContext"]


def test_the_rootless_daemon_writes_the_cache_as_an_image_manifest_for_ecr() -> None:
    # buildkit.cache_image_manifest (issue 23) reaches every buildkit* builder's cache
    values = rootless_settings().model_dump(mode="json", exclude_none=True)
    values["registry"] = {"username": "pusher", "password": "registry-password"}
    values["buildkit"] = {**values.get("buildkit", {}), "cache_image_manifest": True}
    job = manifests.make_build_job(make_build(), Settings.model_validate(values), "builds")
    assert "image-manifest=true" in env_of(job)[pod.BUILDX_ARGS_ENV]
    assert (
        "image-manifest"
        not in env_of(manifests.make_build_job(make_build(), rootless_settings(), "builds"))[
            pod.BUILDX_ARGS_ENV
        ]
    )
