"""Build Jobs of records (issue 25) with the Kubernetes executor, pure: the pod's
repo2docker is handed the resolved version and limited to that record's one content
provider by the shared ConfigMap's configuration file; the proxy and CA of the
settings are in the pod; the provider is on the Job and read back."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobs.executors.kubernetes import manifests, pod
from jobs.executors.kubernetes.credentials import git_config_mounts, git_credential
from jobs.executors.kubernetes.status import build_of_job
from jobs.model import Build, BuildState
from jobs.repo2docker.command import CONTENT_PROVIDER_ENV
from jobs.settings import Settings
from jobs.settings.forges import ForgeSettings
from jobs.settings.providers import ProviderSettings

from .test_kube_manifests import validate
from .test_kube_manifests_buildkit import buildkit_settings, env_of, pod_spec
from .test_kube_status import job_of_build

GOLDEN = Path(__file__).parent / "golden" / "build_job_zenodo.json"
PROXY = "http://proxy.example.org:3128"
IMAGE = "registry.example.org/binder-zenodo-zenodo-org-3242074-1a2b3c4d:3242081"


def record_build(provider: str = "zenodo") -> Build:
    return Build(
        id="6a1d7b1f4c8d5e1f9f2b3c4d5e6f7a81",
        repo="https://zenodo.org/records/3242074",
        ref="latest",
        ref_kind="record",
        sha="3242081",
        image=IMAGE,
        name="bhs-zenodo-zenodo-org-3242074-1a2b3c4d-3242081",
        state=BuildState.QUEUED,
        trigger="api",
        created_at=1764100000.5,
        supersedable=False,
        provider=provider,
    )


def record_settings(**kubernetes: Any) -> Settings:
    """The BuildKit builder with ``providers.proxy``, ``kubernetes.ca_bundle`` and a
    forge credential for the host of the record's page."""
    settings = buildkit_settings(ca_bundle={"name": "bhs-ca", "key": "ca.crt"}, **kubernetes)
    credential = {"url": "https://zenodo.org/", "password": "forge-token-SECRET"}
    return settings.model_copy(
        update={
            "providers": ProviderSettings(proxy=PROXY),
            "forges": ForgeSettings.model_validate({"credentials": [credential]}),
        }
    )


def test_a_record_job_matches_the_golden_file() -> None:
    job = manifests.make_build_job(record_build(), record_settings(), "builds")
    validate(job)
    rendered = json.dumps(job, indent=2, sort_keys=True) + "\n"
    if not GOLDEN.exists():  # pragma: no cover - writing a new golden file is deliberate
        GOLDEN.write_text(rendered)
        pytest.fail(f"wrote {GOLDEN}; check it and commit it")
    assert rendered == GOLDEN.read_text()
    assert "SECRET" not in rendered


def test_the_pod_is_handed_the_version_and_no_ref() -> None:
    job = manifests.make_build_job(record_build(), record_settings(), "builds")
    args = pod_spec(job)["containers"][0]["args"]
    assert args[-1] == "https://zenodo.org/records/3242081"  # the version, not the concept
    assert "--ref" not in args
    figshare = dataclasses.replace(
        record_build("figshare"), repo="https://figshare.com/articles/_/9782777", sha="3"
    )
    job = manifests.make_build_job(figshare, record_settings(), "builds")
    args = pod_spec(job)["containers"][0]["args"]
    assert args[-1] == "https://figshare.com/articles/_/9782777/3"


def test_the_pod_names_its_provider_and_gets_the_proxy_and_the_ca() -> None:
    env = env_of(manifests.make_build_job(record_build(), record_settings(), "builds"))
    assert env[CONTENT_PROVIDER_ENV] == "zenodo"
    assert env["HTTPS_PROXY"] == env["https_proxy"] == PROXY
    assert env["HTTP_PROXY"] == env["http_proxy"] == PROXY
    # the BuildKit daemon is not asked through the proxy
    assert env["NO_PROXY"].split(",")[-2:] == [".cluster.local", "bhs-buildkit.builds.svc"]
    assert env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"]  # the bundle with ca_bundle's
    # a git build of the same settings: none of them
    git = env_of(manifests.make_build_job(record_build("git"), record_settings(), "builds"))
    assert not {CONTENT_PROVIDER_ENV, "HTTPS_PROXY", "NO_PROXY"} & git.keys()


def test_providers_proxy_replaces_the_pods_proxy_for_records_once() -> None:
    settings = record_settings(
        env={"HTTPS_PROXY": "http://general:3128", "NO_PROXY": "registry.example.org"}
    )
    job = manifests.make_build_job(record_build(), settings, "builds")
    names = [item["name"] for item in pod_spec(job)["containers"][0]["env"]]
    assert len(names) == len(set(names))
    env = env_of(job)
    assert env["HTTPS_PROXY"] == PROXY
    assert env["NO_PROXY"] == "registry.example.org"  # the operator's, kept


def test_a_record_build_gets_no_git_credential() -> None:
    settings = record_settings()
    assert git_credential(record_build(), settings) is None
    assert git_config_mounts(record_build(), settings) == ([], [], [])
    # the same page as a git repository would get the credential: the check can fail
    assert git_credential(record_build("git"), settings) is not None


def test_the_provider_is_read_back_from_the_job() -> None:
    build = record_build()
    job = manifests.make_build_job(build, record_settings(), "builds")
    assert job["metadata"]["annotations"][manifests.PROVIDER] == "zenodo"
    assert manifests.build_from_job(job)["provider"] == "zenodo"  # type: ignore[index]
    assert build_of_job(job_of_build(build)) == build
    # a Job made before issue 25 has no provider: it builds a commit
    del job["metadata"]["annotations"][manifests.PROVIDER]
    assert manifests.build_from_job(job)["provider"] == "git"  # type: ignore[index]


RUN_CONFIG = """
import sys
from traitlets.config import Config
c = Config()
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), {"c": c})
print(" ".join(cls.__name__ for cls in c.Repo2Docker.content_providers))
"""


def configured_providers(settings: Settings, environ: dict[str, str], tmp_path: Path) -> str:
    """The content providers repo2docker gets from the ConfigMap's configuration file
    in a pod whose environment is ``environ`` (the file run as traitlets runs it, in a
    process of its own with that environment), or the error it fails with."""
    config = tmp_path / "repo2docker_config.py"
    config.write_text(manifests.make_config_map(settings, "builds")["data"][pod.CONFIG_FILE])
    env = {k: v for k, v in os.environ.items() if k != CONTENT_PROVIDER_ENV}
    result = subprocess.run(
        [sys.executable, "-c", RUN_CONFIG, str(config)],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else result.stderr.strip()


def test_the_config_map_gives_a_record_build_its_one_provider(tmp_path: Path) -> None:
    settings = record_settings()
    git = configured_providers(settings, {}, tmp_path)
    assert git.startswith("Checked")  # checkout_links' Git, as before
    assert configured_providers(settings, {CONTENT_PROVIDER_ENV: "zenodo"}, tmp_path) == "Zenodo"
    figshare = {CONTENT_PROVIDER_ENV: "figshare"}
    assert configured_providers(settings, figshare, tmp_path) == "Figshare"
    # the repo2docker of build pods (images/repo2docker: the service's own 2026.4) has it
    assert configured_providers(settings, {CONTENT_PROVIDER_ENV: "swh"}, tmp_path) == "Swhid"
    hydroshare = {CONTENT_PROVIDER_ENV: "hydroshare"}
    assert configured_providers(settings, hydroshare, tmp_path) == "HydroShare"
    assert configured_providers(settings, {CONTENT_PROVIDER_ENV: "ckan"}, tmp_path) == "CKAN"
    # builder/'s, imported only by the build that names it (the builder image has it)
    dataverse = {CONTENT_PROVIDER_ENV: "dataverse"}
    assert configured_providers(settings, dataverse, tmp_path) == "Dataverse"
    config = manifests.make_config_map(settings, "builds")["data"][pod.CONFIG_FILE]
    assert "\nimport binderhub_service_builder" not in config
    # a name that is no provider of ours fails the build, never falls back to another
    other = {CONTENT_PROVIDER_ENV: "repo2docker.contentproviders.Git"}
    assert "KeyError" in configured_providers(settings, other, tmp_path)


def test_the_config_map_needs_builder_s_providers_only_for_their_records(
    tmp_path: Path,
) -> None:
    """A repo2docker image without binderhub-service-builder (a stock one) still builds
    git and Zenodo: only the provider a pod names is imported."""
    shadow = tmp_path / "shadow" / "binderhub_service_builder"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not in this image')\n")
    without = {"PYTHONPATH": str(shadow.parent)}
    settings = record_settings()
    assert configured_providers(settings, without, tmp_path).startswith("Checked")
    zenodo = {**without, CONTENT_PROVIDER_ENV: "zenodo"}
    assert configured_providers(settings, zenodo, tmp_path) == "Zenodo"
    hydroshare = {**without, CONTENT_PROVIDER_ENV: "hydroshare"}
    assert "not in this image" in configured_providers(settings, hydroshare, tmp_path)


def test_a_proxy_with_a_password_is_refused_with_the_kubernetes_executor() -> None:
    values: dict[str, Any] = {
        "executor": "kubernetes",
        "kubernetes": {"builder_image": "registry.example.org/repo2docker:2026.4.0"},
        "providers": {"proxy": "http://user:pw-SECRET@proxy.example.org:3128"},
    }
    with pytest.raises(ValueError, match=r"providers\.proxy must not hold a user name") as info:
        Settings.model_validate(values)
    assert "SECRET" not in str(info.value)
    values["providers"]["proxy"] = PROXY
    assert Settings.model_validate(values).providers.proxy == PROXY


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
"""A valid label value (at most 63 characters), as the API server checks it."""


@pytest.mark.parametrize(
    ("provider", "version"),
    [
        ("swh", "swh:1:rev:69422736edf63f7fb1c8a87011a8f153c5ac01c5"),
        ("swh", "swh:1:dir:" + "a" * 40),
        ("ckan", "1700000000.519163-2b9f4c1e-8d7a-4f3b-a6e5-1c0d9b8a7f6e"),
        ("hydroshare", "1700000000.123456"),
        ("dataverse", "1.0"),
        ("hg", "6a4a4b38fde9e2516e081a9eee2b7edabb384e07"),
    ],
)
def test_every_version_makes_valid_labels(provider: str, version: str) -> None:
    """A Job's labels are valid label values whatever a version looks like (the API
    server refused a SWHID's Job with 422); the annotation keeps the version as it is."""
    build = dataclasses.replace(record_build(provider), sha=version)
    job = manifests.make_build_job(build, record_settings(), "builds")
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        for key, value in labels.items():
            assert LABEL_VALUE.match(value), (key, value)
            assert len(value) <= 63, (key, value)
    assert job["metadata"]["annotations"]["binderhub-service/commit"] == version
    facts = manifests.build_from_job(job)
    assert facts is not None
    assert facts["commit"] == version
    label = job["metadata"]["labels"][manifests.LABEL_COMMIT]
    if LABEL_VALUE.match(version) and len(version) <= 63:
        assert label == version  # as it is, when it can be
    other = dataclasses.replace(build, sha=version[:-1] + ("2" if version[-1] == "1" else "1"))
    assert manifests.job_labels(other, record_settings())[0][manifests.LABEL_COMMIT] != label
