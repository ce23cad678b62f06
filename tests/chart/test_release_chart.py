"""A release of the chart (issue 22): ``chart/release_chart.py`` writes the release's images
into a copy's values, ``helm package`` gives it the version; a released chart renders with no
values and names only the release's images and upstream ones, and the source chart refuses to
render, naming the empty value and the command that builds the image. The whole release
(images built and pushed, the chart pushed and installed) is tests/cluster/test_release.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_chart_static import CHART, NAMESPACE, RELEASED

sys.path.insert(0, str(CHART))
import release_chart  # a script of the chart, imported from its path

UPSTREAM = ("docker.io/moby/buildkit:", "docker.io/library/docker:")
"""Images a released chart may name besides its own: the daemons' upstream images."""


def helm_(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def released_chart(helm: str, tmp: Path, registry: str, version: str) -> Path:
    """The chart as ``make release`` packages it (scripts/release.sh's steps): a copy,
    stamped, packaged with the version as chart version and appVersion."""
    copy = tmp / "binderhub-service"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert release_chart.main(["--registry", registry, str(copy)]) == 0
    packaged = helm_(
        helm, "package", str(copy), "--version", version, "--app-version", version, "-d", str(tmp)
    )
    assert packaged.returncode == 0, packaged.stderr
    return tmp / f"binderhub-service-{version}.tgz"


def images_of(docs: list[dict[str, Any]]) -> set[str]:
    """Every image a render names: pod containers, and the build pods' (in the settings)."""
    found = set()
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            found.add(container["image"])
        config = (doc.get("data") or {}).get("config.yaml")
        if doc["kind"] == "ConfigMap" and config:
            found.add(yaml.safe_load(config)["kubernetes"]["builder_image"])
    return found


def test_the_tests_released_values_are_what_a_release_writes() -> None:
    assert yaml.safe_load(RELEASED.read_text()) == release_chart.released_values(
        "registry.example.org"
    )


def test_stamping_writes_only_the_two_repositories() -> None:
    text = (CHART / "values.yaml").read_text()
    stamped = release_chart.stamp_values(text, release_chart.released_values("reg.example:5000/x"))
    changed = [
        (old, new)
        for old, new in zip(text.splitlines(), stamped.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [
        ('  repository: ""', '  repository: "reg.example:5000/x/binderhub-service"'),
        ('    repository: ""', '    repository: "reg.example:5000/x/binderhub-service-builder"'),
    ]
    values = yaml.safe_load(stamped)
    assert values["image"]["repository"] == "reg.example:5000/x/binderhub-service"
    assert (
        values["builder"]["image"]["repository"] == "reg.example:5000/x/binderhub-service-builder"
    )
    # the daemons' repositories are upstream's, untouched
    assert values["builder"]["buildkit"]["image"]["repository"] == "docker.io/moby/buildkit"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image:\n  tag: x\n", "not in the values file: image.repository"),
        ('image:\n  repository: ""\nimage:\n  repository: ""\n', "appears twice"),
        ("image:\n  repository: mine\n", "image.repository is 'mine'"),
    ],
    ids=["missing", "twice", "already-named"],
)
def test_stamping_refuses_a_values_file_it_cannot_stamp(text: str, message: str) -> None:
    with pytest.raises(release_chart.ReleaseError, match=message):
        release_chart.stamp_values(text, {"image": {"repository": "r/x"}})


def test_stamping_keeps_a_comment() -> None:
    out = release_chart.stamp_values(
        'image:\n  repository: ""  # set by the release\n', {"image": {"repository": "r/x"}}
    )
    assert out == 'image:\n  repository: "r/x"  # set by the release\n'


@pytest.mark.parametrize(
    "registry", ["https://ghcr.io/x", "GHCR.io/x", "", "ghcr.io/x y", "ghcr.io//x"]
)
def test_a_registry_that_is_not_one_is_refused(registry: str) -> None:
    with pytest.raises(release_chart.ReleaseError, match="is not a registry"):
        release_chart.released_values(registry)


@pytest.mark.parametrize(
    ("missing", "command"),
    [
        ("image.repository", "`docker build .`"),
        ("builder.image.repository", "`docker build -f images/repo2docker/Dockerfile .`"),
    ],
)
def test_a_chart_that_was_not_released_names_the_empty_value_and_the_command(
    helm: str, missing: str, command: str
) -> None:
    # the other image named, so that the message is this one's
    other = {
        "image.repository": "builder.image.repository=reg.example/b",
        "builder.image.repository": "image.repository=reg.example/s",
    }[missing]
    for args in (
        ("template", "rel", str(CHART)),
        ("install", "rel", str(CHART), "--dry-run=client", "--namespace", NAMESPACE),
    ):
        result = helm_(helm, *args, "--set", other)
        assert result.returncode != 0
        assert f"{missing} is empty: this chart was not released" in result.stderr
        assert "make release REGISTRY=<registry> VERSION=<version>" in result.stderr
        assert command in result.stderr


def test_a_released_chart_needs_no_values_and_names_only_its_images(
    helm: str, tmp_path: Path
) -> None:
    chart = released_chart(helm, tmp_path, "reg.example:5000/team", "1.2.3")
    for builder in ("buildkit", "docker-socket", "dind"):
        result = helm_(
            helm, "template", "rel", str(chart), "--namespace", NAMESPACE,
            "--set", f"builder.type={builder}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        images = images_of(docs)
        ours = {i for i in images if not i.startswith(UPSTREAM)}
        assert ours == {
            "reg.example:5000/team/binderhub-service:1.2.3",
            "reg.example:5000/team/binderhub-service-builder:1.2.3",
        }, builder
    shown = helm_(helm, "show", "chart", str(chart))
    assert yaml.safe_load(shown.stdout)["appVersion"] == "1.2.3"
    # the script stays behind; the values keep their comments
    listing = subprocess.run(["tar", "-tzf", str(chart)], capture_output=True, text=True).stdout
    assert "binderhub-service/release_chart.py" not in listing
    values = helm_(helm, "show", "values", str(chart)).stdout
    assert "# a released chart names its image here" in values


def test_an_upgrade_to_the_next_version_leaves_the_buildkit_daemon_running(
    helm: str, tmp_path: Path
) -> None:
    """The BuildKit daemon's pod (every running build's) depends on its configuration and
    its certificates, which an upgrade keeps (lookup), not on the chart's version: its
    ``checksum/tls`` covers the Secrets' data, not their labels."""
    templates = []
    for version in ("1.0.0", "1.0.1"):
        (tmp_path / version).mkdir()
        chart = released_chart(helm, tmp_path / version, "reg.example/team", version)
        result = helm_(helm, "template", "rel", str(chart), "--namespace", NAMESPACE)
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        (daemon,) = [
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-buildkit")
        ]
        data = {
            d["metadata"]["name"].rpartition("-")[2]: d["data"]
            for d in docs
            if d["kind"] == "Secret" and "-buildkit-" in d["metadata"]["name"]
        }
        assert sorted(data) == ["client", "server"]
        template = daemon["spec"]["template"]
        checksum = template["metadata"]["annotations"].pop("checksum/tls")
        as_go_json = json.dumps(data, separators=(",", ":"), sort_keys=True)
        assert checksum == hashlib.sha256(as_go_json.encode()).hexdigest()
        templates.append(template)
    # helm template makes new certificates each time (an upgrade keeps them); nothing else
    # of the daemon's pod differs between the versions
    assert templates[0] == templates[1]
