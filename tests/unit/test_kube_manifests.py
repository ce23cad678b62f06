"""The build Job manifest and the role (pure)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from jobs.executors.kubernetes import manifests
from jobs.executors.kubernetes.rbac import RULES, role
from jobs.model import Build, BuildState
from jobs.naming import build_name_for, image_name_for
from jobs.settings import Settings

GOLDEN = Path(__file__).parent / "golden" / "build_job.json"
KUBERNETES_VERSION = "1.34.0"  # the test cluster's (tests/cluster/k8s/go.mod: v1.34.4)


def make_build(repo: str = "https://github.com/binder-examples/requirements") -> Build:
    sha = "0123456789abcdef0123456789abcdef01234567"
    image = image_name_for("registry.example.org/binder-", repo, sha)
    return Build(
        id="5f0c6a0e3b7c4d0f8e1a2b3c4d5e6f70",
        repo=repo,
        ref="main",
        ref_kind="branch",
        sha=sha,
        image=image,
        name=build_name_for(image),
        state=BuildState.QUEUED,
        trigger="webhook:github",
        created_at=1764100000.25,
    )


def settings_of(**values: Any) -> Settings:
    """Settings from plain values, as a configuration file gives them."""
    return Settings(**values)


def full_settings() -> Settings:
    """Every Kubernetes option set, and secrets everywhere they can be."""
    return settings_of(
        executor="kubernetes",
        image_prefix="registry.example.org/binder-",
        registry={"username": "pusher", "password": "registry-password-SECRET"},
        webhooks={"github_secret": "webhook-SECRET"},
        limits={"build_timeout": 1800.5},
        repo2docker={"target_repo_dir": "/srv/repo", "extra_args": ["--label", "a=b"]},
        kubernetes={
            "namespace": "builds",
            "instance": "bhs",
            "builder_image": "registry.example.org/repo2docker:2024.07.0",
            "builder_image_pull_policy": "Always",
            "service_account": "bhs-builder",
            "docker_socket": "/var/run/dind/bhs/docker.sock",
            "docker_config_secret": {"name": "bhs-push", "key": "config.json"},
            "registry_credentials_secret": {"name": "bhs-push", "key": "credentials"},
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"memory": "4Gi"},
            },
            "node_selector": {"binderhub-service/docker": "true"},
            "tolerations": [{"key": "builds", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 10,
                            "preference": {
                                "matchExpressions": [
                                    {"key": "fast", "operator": "In", "values": ["yes"]}
                                ]
                            },
                        }
                    ]
                }
            },
            "priority_class_name": "builds",
            "run_as_user": 1000,
            "run_as_groups": [998],
            "ttl_seconds_after_finished": 600,
        },
        # a window longer than the Jobs' TTL: the TTL follows it (quotas count Jobs)
        quotas={"per_user": {"builds_per_window": 10, "window": 7200.5}},
        # the build's repository has a git credential (a Secret of its own), another not
        forges={
            "credentials": [
                {"url": "https://github.com/binder-examples", "password": "git-SECRET"},
                {"url": "https://gitlab.example.org", "password": "other-git-SECRET"},
            ]
        },
    )


VARIANTS = {
    "defaults": Settings(executor="kubernetes"),
    "everything": full_settings(),
}


def validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_a_valid_job(variant: str) -> None:
    settings = VARIANTS[variant]
    validate(manifests.make_build_job(make_build(), settings, "builds"))
    validate(manifests.make_config_map(settings, "builds"))


def test_an_invalid_manifest_is_refused_by_the_validator() -> None:
    # the check above can fail: an unknown field is an error in strict mode
    job = manifests.make_build_job(make_build(), VARIANTS["defaults"], "builds")
    job["spec"]["template"]["spec"]["containers"][0]["commandd"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)


def test_the_role_is_valid() -> None:
    validate(role("bhs", "builds"))
    assert {rule["resources"][0] for rule in RULES} == {
        "jobs",
        "pods",
        "pods/log",
        "events",
        "secrets",
        "configmaps",
        "leases",
        "endpointslices",
    }


def requested_build() -> Build:
    return dataclasses.replace(make_build(), trigger="binderhub", requester="user:ann@example.org")


def test_job_matches_the_golden_file() -> None:
    job = manifests.make_build_job(requested_build(), full_settings(), "builds")
    rendered = json.dumps(job, indent=2, sort_keys=True) + "\n"
    if not GOLDEN.exists():  # pragma: no cover - writing a new golden file is deliberate
        GOLDEN.write_text(rendered)
        pytest.fail(f"wrote {GOLDEN}; check it and commit it")
    assert rendered == GOLDEN.read_text()


def test_a_requested_build_is_a_valid_job_that_names_its_requester() -> None:
    job = manifests.make_build_job(requested_build(), full_settings(), "builds")
    validate(job)
    facts = manifests.build_from_job(job)
    assert facts is not None
    assert facts["requester"] == "user:ann@example.org"
    label = job["metadata"]["labels"][manifests.REQUESTER]
    assert label == manifests.requester_label("user:ann@example.org")
    assert len(label) == 40
    # a webhook's build names nobody
    plain = manifests.make_build_job(make_build(), VARIANTS["defaults"], "builds")
    assert manifests.REQUESTER not in plain["metadata"]["annotations"]
    assert "requester" not in (manifests.build_from_job(plain) or {})


def test_jobs_outlive_the_longest_quota_window() -> None:
    assert manifests.job_ttl(Settings(executor="kubernetes")) == 3600
    assert manifests.job_ttl(full_settings()) == 7201
    short = settings_of(quotas={"per_repo": {"builds_per_window": 1, "window": 60}})
    assert manifests.job_ttl(short) == 3600


def test_no_secret_value_is_in_the_job() -> None:
    text = json.dumps(manifests.make_build_job(make_build(), full_settings(), "builds"))
    assert "SECRET" not in text
    assert "registry-password" not in text
    assert '"secretKeyRef": {"name": "bhs-push", "key": "credentials"}' in text


def test_job_shape() -> None:
    build = make_build()
    job = manifests.make_build_job(build, VARIANTS["defaults"], "ns")
    spec = job["spec"]
    assert job["metadata"]["name"] == build.name
    assert len(build.name) <= 63
    assert spec["suspend"] is True
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 3600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["command"] == ["jupyter-repo2docker"]
    assert container["args"][-1] == build.repo  # the repository URL is always last
    assert container["args"][container["args"].index("--ref") + 1] == build.sha
    assert container["args"][container["args"].index("--image-name") + 1] == build.image
    labels = job["metadata"]["labels"]
    assert labels[manifests.LABEL_BUILD_ID] == build.id
    assert labels[manifests.LABEL_COMMIT] == build.sha
    assert labels["app.kubernetes.io/instance"] == "binderhub-service"
    assert manifests.build_from_job(job) == {
        "repo": build.repo,
        "ref": "main",
        "ref-kind": "branch",
        "commit": build.sha,
        "image": build.image,
        "build-id": build.id,
        "trigger": "webhook:github",
        "queued-at": "1764100000.250000",
        "provider": "git",
    }


def test_job_names_differ_for_images_that_look_alike() -> None:
    long = "https://example.org/" + "x" * 200
    a = make_build(long + "/a")
    b = make_build(long + "/b")
    assert a.name != b.name
    assert len(a.name) <= 63
    assert len(b.name) <= 63


def test_a_foreign_job_is_not_read_as_a_build() -> None:
    assert manifests.build_from_job({"metadata": {"annotations": {"other": "x"}}}) is None


def test_push_credentials_are_a_file_in_a_writable_docker_config() -> None:
    """buildx writes ``$DOCKER_CONFIG/buildx``: the directory is an emptyDir and only
    ``config.json`` comes from the Secret, by subPath (issues #14, #15)."""
    settings = settings_of(
        executor="kubernetes",
        registry={"username": "builder", "password": "pw-SECRET"},
        kubernetes={"docker_config_secret": {"name": "rel-push", "key": "docker-config.json"}},
    )
    job = manifests.make_build_job(make_build(), settings, "ns")
    validate(job)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    directory = env["DOCKER_CONFIG"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in container["volumeMounts"] if m["mountPath"].startswith(directory)]
    assert [(m["mountPath"], m.get("readOnly", False), m.get("subPath")) for m in mounts] == [
        (directory, False, None),
        (f"{directory}/config.json", True, "config.json"),
    ]
    assert volumes[mounts[0]["name"]] == {"name": mounts[0]["name"], "emptyDir": {}}
    assert volumes[mounts[1]["name"]]["secret"] == {
        "secretName": "rel-push",
        "items": [{"key": "docker-config.json", "path": "config.json"}],
    }
    assert "SECRET" not in json.dumps(job)
    # without credentials there is nothing of the kind
    plain = manifests.make_build_job(make_build(), VARIANTS["defaults"], "ns")
    assert "DOCKER_CONFIG" not in json.dumps(plain)
