"""``binderhub-service retention`` as an operator runs it (a CronJob, a shell), against
a real registry with deletion on and one with it off, on a store that records builds
as the service does (issue 26)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.model import Build, BuildState
from jobs.store import SqliteStore
from testkit.components import Registry, free_port, start_registry

from .tiny_images import distinct_image, push_as

CLI = str(Path(sys.executable).parent / "binderhub-service")
DAY = 86400.0


@pytest.fixture(scope="module")
def no_delete_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = start_registry(tmp_path_factory.mktemp("cli-no-delete-registry"), delete=False)
    yield server
    server.stop()


def retention(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "retention", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def setup(
    registry: Registry, tmp_path: Path, unique: str, **retention_: Any
) -> tuple[Path, list[str]]:
    """Three commits of one branch built 100, 99 and 98 days ago, pushed and recorded;
    a config that reads no cluster. The config's path and the images, oldest first."""
    state = tmp_path / f"state-{unique}.sqlite"
    repository = f"t{unique}-cli-repo"
    store = SqliteStore(str(state))
    images = []
    try:
        for n, age in enumerate((100, 99, 98)):
            sha = f"{n:040x}"
            image = push_as(registry, distinct_image(f"cli-{unique}-{n}"), f"{repository}:{sha}")
            when = time.time() - age * DAY
            store.create(
                Build(
                    id=f"{unique}{n:024x}",
                    repo=f"https://example.org/{unique}/repo",
                    ref="refs/heads/main",
                    ref_kind="branch",
                    sha=sha,
                    image=image,
                    name=f"r2d-{n}",
                    state=BuildState.BUILT,
                    trigger="webhook:github",
                    created_at=when,
                    finished_at=when,
                )
            )
            images.append(image)
    finally:
        store.close()
    config = tmp_path / f"config-{unique}.yml"
    settings = {
        "image_prefix": f"{registry.host}/t{unique}-",
        "state_path": str(state),
        "retention": {"in_use": "none", "keep_per_ref": 1, **retention_},
    }
    config.write_text(yaml.safe_dump(settings))
    return config, images


def tags(registry: Registry, image: str) -> list[str]:
    repository = image.split("/", 1)[1].rsplit(":", 1)[0]
    out = subprocess.run(
        ["curl", "-sf", f"{registry.url}/v2/{repository}/tags/list"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(json.loads(out.stdout)["tags"] or [])


def test_dry_run_then_run(registry: Registry, tmp_path: Path, unique: str) -> None:
    config, images = setup(registry, tmp_path, unique)
    every = tags(registry, images[0])
    assert len(every) == 3

    dry = retention(config, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert [i for d in report["plan"]["delete"] for i in d["images"]] == images[:2]
    assert report["deleted"] == []
    assert tags(registry, images[0]) == every

    done = retention(config)
    assert done.returncode == 0, done.stderr
    assert f"deleted {images[0]} (sha256:" in done.stdout
    assert f"kept {images[2]}: offered, newest" in done.stdout
    assert "deleted 2 images (2 manifests), kept 1" in done.stdout
    assert tags(registry, images[0]) == [images[2].rsplit(":", 1)[1]]
    store = SqliteStore(str(tmp_path / f"state-{unique}.sqlite"))
    try:
        assert sorted(d.image for d in store.deletions()) == images[:2]
    finally:
        store.close()

    again = retention(config)  # nothing left to delete
    assert again.returncode == 0, again.stderr
    assert "deleted 0 images (0 manifests), kept 1" in again.stdout


def test_a_registry_that_does_not_delete_is_refused(
    no_delete_registry: Registry, tmp_path: Path, unique: str
) -> None:
    config, images = setup(no_delete_registry, tmp_path, unique)
    refused = retention(config)
    assert refused.returncode == 2
    assert "does not delete manifests" in refused.stderr
    assert "storage.delete.enabled" in refused.stderr
    assert len(tags(no_delete_registry, images[0])) == 3
    # a dry run still lists what would go
    dry = retention(config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2 images (2 manifests), kept 1" in dry.stdout


def test_a_policy_that_keeps_nothing_is_refused(
    registry: Registry, tmp_path: Path, unique: str
) -> None:
    config, images = setup(registry, tmp_path, unique, keep_per_ref=0)
    refused = retention(config, "--dry-run")
    assert refused.returncode == 2
    assert "retention.keep_per_ref" in refused.stderr
    assert "would keep nothing" in refused.stderr
    assert len(tags(registry, images[0])) == 3


def test_an_api_server_that_cannot_be_reached_stops_it_before_anything_is_deleted(
    registry: Registry, tmp_path: Path, unique: str
) -> None:
    """The images in use are read from the Kubernetes API (``in_use: kubernetes``); an
    API server that refuses connections leaves the registry as it was."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    config, images = setup(registry, tmp_path, unique, in_use="kubernetes")
    settings = yaml.safe_load(config.read_text())
    settings["kubernetes"] = {"kubeconfig": str(kubeconfig), "namespace": "hub"}
    settings["retention"]["guard_timeout"] = 5
    config.write_text(yaml.safe_dump(settings))
    stopped = retention(config)
    assert stopped.returncode == 1, stopped.stderr
    assert "retention could not plan, nothing deleted" in stopped.stderr
    assert "what is in use or offered could not be read" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert len(tags(registry, images[0])) == 3
