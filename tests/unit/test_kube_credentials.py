"""A build pod's git credential: only its repository's, in a Secret of its own that its
Job refers to by name (jobs/executors/kubernetes/credentials.py)."""

from __future__ import annotations

import dataclasses
import json
import re

import kubernetes_validate

from jobs.executors.kubernetes import credentials, manifests
from jobs.settings import Settings

from .test_kube_manifests import KUBERNETES_VERSION, full_settings, make_build


def test_the_secret_holds_only_the_credential_of_the_builds_repository() -> None:
    build = make_build()
    settings = full_settings()
    credential = credentials.git_credential(build, settings)
    assert credential is not None
    assert credential.pattern.git_url == "https://github.com/binder-examples"
    labels = {"app.kubernetes.io/component": "build"}
    secret = credentials.make_git_secret(build, credential, "builds", "uid-1", labels)
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"{build.name}-git-5f0c6a0e",
            "namespace": "builds",
            "labels": labels,
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": build.name, "uid": "uid-1"}
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "stringData": {
            "gitconfig": '[http "https://github.com/binder-examples"]\n'
            "\textraHeader = Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2l0LVNFQ1JFVA==\n"
        },
    }
    assert "other-git-SECRET" not in json.dumps(secret)


def test_the_job_mounts_the_builds_secret_and_holds_no_value() -> None:
    build = make_build()
    job = manifests.make_build_job(build, full_settings(), "builds")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GIT_CONFIG_GLOBAL"] == "/etc/binderhub-service-git/config"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"  # no credential helper of the image
    assert "GIT_CREDENTIAL_ENV" not in env
    (volume,) = [v for v in pod["volumes"] if v["name"] == "git-config"]
    assert volume["secret"]["secretName"] == credentials.git_secret_name(build)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "git-config"]
    assert mount == {
        "name": "git-config",
        "mountPath": "/etc/binderhub-service-git",
        "readOnly": True,
    }
    assert "SECRET" not in json.dumps(job)


def test_a_repository_no_credential_covers_gets_none() -> None:
    build = make_build("https://github.com/someone-else/repo")
    settings = full_settings()
    assert credentials.git_credential(build, settings) is None
    assert credentials.git_config_mounts(build, settings) == ([], [], [])
    job = manifests.make_build_job(build, settings, "builds")
    assert "GIT_CONFIG_GLOBAL" not in json.dumps(job)
    assert "git-config" not in json.dumps(job)
    plain = manifests.make_build_job(make_build(), Settings(executor="kubernetes"), "builds")
    assert "GIT_CONFIG_GLOBAL" not in json.dumps(plain)


def test_secret_names_are_valid_and_differ_per_build_of_an_image() -> None:
    a = make_build("https://example.org/" + "x" * 200)
    name = credentials.git_secret_name(a)
    assert len(name) <= 253
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name)
    again = dataclasses.replace(a, id="0123456789abcdef0123456789abcdef")
    assert credentials.git_secret_name(again) != name  # an older build's may still be there
