"""The recipes of docs/clouds.md (EKS with ECR, GKE with Artifact Registry, AKS with ACR),
rendered through the chart's schema and templates and loaded by the service's settings
loader: each gives the image prefix, the push credentials and what its registry needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_chart_static import ROOT, Render, load_as_service, one, render

__all__ = ["render"]  # a fixture of the static tests

CLOUDS = ROOT / "docs" / "clouds"


def recipe(name: str) -> str:
    path = CLOUDS / f"{name}-values.yaml"
    assert f"clouds/{name}-values.yaml" in (ROOT / "docs" / "clouds.md").read_text()
    return str(path)


@pytest.mark.parametrize(
    ("name", "prefix", "cache_image_manifest"),
    [
        ("eks", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/binder-", True),
        ("gke", "europe-west1-docker.pkg.dev/my-project/binder/img-", False),
        ("aks", "myregistry.azurecr.io/binder-", False),
    ],
)
def test_each_recipe_installs_a_service_that_pushes_to_its_registry(
    render: Render,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    prefix: str,
    cache_image_manifest: bool,
) -> None:
    docs = render("-f", recipe(name))
    settings = load_as_service(docs, tmp_path, monkeypatch)
    assert settings.image_prefix == prefix
    assert settings.buildkit.cache_image_manifest is cache_image_manifest
    # build pods push with a docker config.json of the recipe's Secret
    secret = settings.kubernetes.docker_config_secret
    assert secret is not None
    assert secret.key == "docker-config.json"
    if name == "aks":  # made by the chart from the ACR token
        assert secret.name == "rel-binderhub-service"
        assert one(docs, "Secret", secret.name)["data"]["docker-config.json"]
    else:  # the operator's, kept fresh by a CronJob with the cloud identity
        assert secret.name == "binder-registry"
    # NetworkPolicies stay on: the registries are on the internet
    assert any(d["kind"] == "NetworkPolicy" for d in docs)
