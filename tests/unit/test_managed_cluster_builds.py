"""What build pods get on managed clusters (issue 23), pure: the proxy's environment, the
CA bundle added to their image's by an init container, cert-manager's key names for the
BuildKit client certificate, the mirror a repository is fetched from, and the cache
manifest ECR takes."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.executors.kubernetes import manifests, pod, trust
from jobs.repo2docker.command import buildx_args
from jobs.settings import BuildKitSettings, ConfigError, Settings, load_settings

from .test_kube_manifests import make_build, validate
from .test_kube_manifests_buildkit import buildkit_settings, env_of, pod_spec

PROXY = {"HTTPS_PROXY": "http://proxy.example.org:3128", "NO_PROXY": ".svc,localhost"}


def job_of(**kubernetes: Any) -> dict[str, Any]:
    job = manifests.make_build_job(make_build(), buildkit_settings(**kubernetes), "builds")
    validate(job)
    return job


def test_the_proxy_reaches_the_builder() -> None:
    env = env_of(job_of(env=PROXY))
    assert env["HTTPS_PROXY"] == PROXY["HTTPS_PROXY"]
    assert env["NO_PROXY"] == PROXY["NO_PROXY"]
    assert "HTTPS_PROXY" not in env_of(job_of())


@pytest.mark.parametrize(
    "name", ["HOME", "GIT_CONFIG_GLOBAL", "BUILDKIT_HOST", "DOCKER_CONFIG", "SSL_CERT_FILE", "a b"]
)
def test_the_pods_own_variables_cannot_be_overridden(name: str) -> None:
    with pytest.raises(ValueError, match=r"environment variable|set by the build pod"):
        buildkit_settings(env={name: "x"})


def test_the_ca_bundle_is_added_to_the_images_by_an_init_container() -> None:
    job = job_of(ca_bundle={"name": "corp-ca", "key": "bundle.pem"})
    spec = pod_spec(job)
    (init,) = spec["initContainers"]
    assert init["name"] == "ca-bundle"
    assert init["image"] == spec["containers"][0]["image"]
    assert init["securityContext"] == spec["containers"][0]["securityContext"]
    script = init["command"][-1]
    assert "/etc/ssl/certs/ca-certificates.crt" in script  # the image's own, kept
    assert f"{trust.CA_DIR}/ca.crt" in script
    assert f"> {trust.CA_FILE};" in script
    # hg reads no SSL_CERT_FILE: the builder's $HOME/.hgrc names the file (web.cacerts)
    assert script.rstrip().endswith(f"cacerts = %s\\n' {trust.CA_FILE} > {trust.HG_CONFIG_FILE}")
    assert env_of(job)["HOME"] + "/.hgrc" == trust.HG_CONFIG_FILE
    (volume,) = [v for v in spec["volumes"] if v["name"] == "ca-bundle"]
    assert volume["configMap"] == {
        "name": "corp-ca",
        "items": [{"key": "bundle.pem", "path": "ca.crt"}],
    }
    # the builder mounts the pod's /tmp, where the file is written, not the ConfigMap
    env = env_of(job)
    for name in ("GIT_SSL_CAINFO", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        assert env[name] == trust.CA_FILE
    assert trust.CA_FILE.startswith("/tmp/")
    assert "initContainers" not in pod_spec(job_of())


def test_cert_managers_key_names_become_the_clients_files() -> None:
    keys = {"ca": "ca.crt", "cert": "tls.crt", "key": "tls.key"}
    (volume,) = [v for v in pod_spec(job_of(buildkit_tls_keys=keys))["volumes"]
                 if v["name"] == "buildkit-tls"]  # fmt: skip
    assert volume["secret"]["items"] == [
        {"key": "ca.crt", "path": "ca.pem"},
        {"key": "tls.crt", "path": "cert.pem"},
        {"key": "tls.key", "path": "key.pem"},
    ]


def with_settings(**top: Any) -> Settings:
    """``buildkit_settings()`` with more top-level settings."""
    values = buildkit_settings().model_dump(mode="json", exclude_none=True)
    values["registry"] = {"username": "pusher", "password": "registry-password"}
    return Settings.model_validate({**values, **top})


def test_a_mirrored_repository_is_cloned_from_the_mirror_and_keeps_its_image() -> None:
    build = make_build("https://github.com/binder-examples/requirements")
    plain = manifests.make_build_job(build, with_settings(), "builds")
    mirrors = [{"prefix": "https://GitHub.com/", "url": "git://mirror.internal/cache/"}]
    mirrored = manifests.make_build_job(build, with_settings(mirrors=mirrors), "builds")
    args = pod_spec(mirrored)["containers"][0]["args"]
    assert args[-1] == "git://mirror.internal/cache/binder-examples/requirements"
    assert pod_spec(plain)["containers"][0]["args"][-1] == build.repo
    # the image, the Job's name and its record of the repository stay the URL asked for
    assert args[args.index("--image-name") + 1] == build.image
    assert mirrored["metadata"]["name"] == plain["metadata"]["name"]
    assert mirrored["metadata"]["annotations"] == plain["metadata"]["annotations"]


def test_ecr_takes_the_cache_as_an_image_manifest() -> None:
    host = "tcp://buildkitd:1234"
    image = "123.dkr.ecr.eu-west-1.amazonaws.com/binder-x:abc"
    default = buildx_args(BuildKitSettings(host=host), image)
    assert not any("image-manifest" in arg for arg in default)
    ecr = buildx_args(BuildKitSettings(host=host, cache_image_manifest=True), image)
    (cache_to,) = [arg for arg in ecr if "mode=max" in arg]
    assert "image-manifest=true" in cache_to
    assert "oci-mediatypes=true" in cache_to
    assert cache_to.endswith("ignore-error=true")
    # build pods get the same arguments
    settings = with_settings(buildkit={"cache_image_manifest": True})
    job = manifests.make_build_job(make_build(), settings, "builds")
    assert "image-manifest=true" in env_of(job)[pod.BUILDX_ARGS_ENV]


def test_a_bad_environment_name_is_refused_naming_the_setting(tmp_path: Any) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("kubernetes:\n  env:\n    GIT_SSL_NO_VERIFY: 'true'\n")
    with pytest.raises(ConfigError, match=r"kubernetes\.env"):
        load_settings(config)
