"""Records built by ``binderhub-service build`` in the foreground (issue 25): Figshare,
Dataverse, HydroShare, CKAN, Software Heritage and Mercurial, each resolved by the CLI
through its stand-in under the real host name (Mercurial from a real ``hg serve``),
built by the real repo2docker into the test registry under the resolved version's tag,
and found there by a second run, which builds nothing. Zenodo's is in
test_zenodo_figshare_builds.py (``test_the_cli_builds_a_zenodo_doi_and_then_finds_it``).

Each record holds a Dockerfile (FROM the local base image) whose RUN step names the
version, so the CLI's progress output says which version was built. HydroShare and
CKAN are fetched by builder/'s content providers, which are in repo2docker 2026.4's
environment: those two build on this session's buildkitd and push to the registry with
auth; the others build with repo2docker 2024.7.0 on the Docker daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.model import Build, BuildState
from jobs.store import SqliteStore
from testkit.components import Registry, in_registry, legacy_repo2docker

from .conftest import REGISTRY_AUTH
from .provider_records import (  # noqa: F401 - standin, proxy, hg_repo: fixtures
    A1,
    CKAN_PAGE,
    CURRENT,
    DV_DOI,
    DV_HOST,
    DV_PAGE,
    DV_PID,
    FIGSHARE,
    HS_ID,
    HS_PAGE,
    archive,
    hg_commit,
    hg_repo,
    in_auth_registry,
    modify_resource,
    proxy,
    publish_dataset,
    publish_dataverse,
    record_zip,
    standin,
)
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_buildkit import base_image, buildkitd  # noqa: F401 - fixtures
from .test_cli import run_cli


@dataclass(frozen=True)
class CliRecord:
    """One provider's stand-in record as the CLI is asked for it: ``asked`` (and
    ``ref``) the first time, ``again`` the second; ``tag`` the resolved version's
    image tag; ``built`` what the build's log says of the version built; ``provider``
    the build record's provider; ``current``: built by repo2docker 2026.4 (builder/'s
    providers) rather than 2024.7.0; ``settings`` added to the CLI's configuration."""

    provider: str
    asked: list[str]
    again: list[str]
    tag: str
    built: str
    current: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


def publish_figshare(server: ProviderStandIn) -> None:
    """The recorded article (current version 3) and its version 1, each with one file
    holding a Dockerfile that names its version."""
    current, first = recorded("figshare_article"), recorded("figshare_version")
    server.json(FIGSHARE, current)
    for article in (current, first):
        server.json(f"{FIGSHARE}/versions/{article['version']}", article)
        url = article["files"][0]["download_url"]
        server.content(url, record_zip(str(article["version"]), "figshare"))


def figshare(server: ProviderStandIn, request: pytest.FixtureRequest) -> CliRecord:
    publish_figshare(server)
    doi, page = "10.6084/m9.figshare.9782777", "https://figshare.com/articles/dataset/x/9782777"
    return CliRecord("figshare", [doi], [page], "v3", "figshare-version-3")


def dataverse(server: ProviderStandIn, request: pytest.FixtureRequest) -> CliRecord:
    publish_dataverse(server, "1.0")
    server.json(f"https://doi.org/api/handles/{DV_DOI.lower()}", recorded("doi_handle"))
    return CliRecord("dataverse", [DV_PAGE], [DV_DOI], "v1.0", "dataverse-version-1.0")


def hydroshare(server: ProviderStandIn, request: pytest.FixtureRequest) -> CliRecord:
    version = modify_resource(server, 1700000000, request.getfixturevalue("base_image"))
    also = f"https://hydroshare.org/resource/{HS_ID}"
    return CliRecord(
        "hydroshare", [HS_PAGE], [also], version, "hydroshare-version-1700000000", current=True
    )


def ckan(server: ProviderStandIn, request: pytest.FixtureRequest) -> CliRecord:
    version = publish_dataset(server, 1700000000, A1, request.getfixturevalue("base_image"))
    asked = [f"ckan:{CKAN_PAGE}"]
    return CliRecord(
        "ckan",
        asked,
        asked,
        version,
        "ckan-version-1700000000",
        current=True,
        settings={"allowed_repos": ["ckan:demo.ckan.org/*"]},
    )


def swh(server: ProviderStandIn, request: pytest.FixtureRequest) -> CliRecord:
    rev, _ = archive(server, request.getfixturevalue("tmp_path"), "from-the-cli")
    again = f"{rev};origin=https://example.org/archived"  # qualifiers are dropped
    return CliRecord("swh", [rev], [again], f"rev-{rev.rpartition(':')[2]}", "swh-from-the-cli")


def mercurial(server: ProviderStandIn, request: pytest.FixtureRequest) -> CliRecord:
    url, repo = request.getfixturevalue("hg_repo")
    changeset = hg_commit(repo, "from-the-cli")
    # asked again with the branch as the CLI's --ref
    return CliRecord(
        "hg", [f"hg+{url}"], [f"hg+{url}", "--ref", "default"], changeset, "hg-from-the-cli"
    )


RECORDS: dict[str, Callable[[ProviderStandIn, pytest.FixtureRequest], CliRecord]] = {
    "figshare": figshare,
    "dataverse": dataverse,
    "hydroshare": hydroshare,
    "ckan": ckan,
    "swh": swh,
    "hg": mercurial,
}


def cli_config(
    request: pytest.FixtureRequest,
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
    *,
    builder: str | None = "legacy",
    **settings: Any,
) -> Path:
    """A configuration file for the CLI: its own state file and image prefix, the
    stand-ins reached through ``providers.proxy`` and trusted through ``ca_bundle``.
    ``builder``: ``legacy``, repo2docker 2024.7.0 on the Docker daemon, pushing to the
    registry without auth; ``current``, repo2docker 2026.4 on buildkitd, pushing to the
    registry with auth; None, the service's default repo2docker and nothing to build
    with (for requests that build nothing: it starts faster)."""
    tmp_path: Path = request.getfixturevalue("tmp_path")
    unique: str = request.getfixturevalue("unique")
    values: dict[str, Any] = {
        "state_path": str(tmp_path / "state.sqlite"),
        "providers": {"proxy": proxy.url},
        "ca_bundle": str(standin.ca),
    }
    if builder == "current":
        registry: Registry = request.getfixturevalue("auth_registry")
        user, password = REGISTRY_AUTH
        values.update(
            registry={"username": user, "password": password},
            repo2docker=CURRENT,
            buildkit={"host": request.getfixturevalue("buildkitd").address},
        )
    else:
        registry = request.getfixturevalue("registry")
        if builder == "legacy":
            values.update(repo2docker=legacy_repo2docker())
    values.update(image_prefix=f"{registry.host}/t{unique}-", **settings)
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(values))
    return config


def builds(config: Path) -> list[Build]:
    """Every build the CLI recorded in its state file."""
    store = SqliteStore(Path(yaml.safe_load(config.read_text())["state_path"]))
    try:
        return store.recent(limit=1000)
    finally:
        store.close()


@pytest.mark.parametrize("name", list(RECORDS))
def test_the_cli_builds_each_providers_record_and_then_finds_it(
    name: str,
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    record = RECORDS[name](standin, request)
    builder = "current" if record.current else "legacy"
    config = cli_config(request, standin, proxy, builder=builder, **record.settings)
    registry = request.getfixturevalue("auth_registry" if record.current else "registry")
    unique = request.getfixturevalue("unique")

    built = run_cli(*record.asked, config=config)
    assert built.returncode == 0, built.stderr
    image = built.stdout.strip()
    assert image.startswith(f"{registry.host}/t{unique}-{record.provider}-"), image
    assert image.endswith(f":{record.tag}"), image
    assert f"built-{record.built}" in built.stderr, built.stderr
    if record.current:
        assert in_auth_registry(registry, image)
    else:
        assert in_registry(registry.url, image)
    [build] = builds(config)
    assert (build.provider, build.state, build.image) == (record.provider, BuildState.BUILT, image)

    cached = run_cli(*record.again, config=config)
    assert (cached.returncode, cached.stdout.strip()) == (0, image), cached.stderr
    assert f"{image} exists already" in cached.stderr
    assert "built-" not in cached.stderr  # nothing was built
    assert builds(config) == [build]  # nor recorded
    assert proxy.refused == []


def test_the_cli_refuses_bad_records_and_changes_nothing(
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    """One bad input of each provider, each of another kind: malformed, a ref beside a
    record, a host the service must not be led to, a record that does not exist, an
    allow-list that does not admit it. Exit status 2, the problem named on standard
    error, nothing on standard output, nothing recorded or built, no provider asked
    but the one that says the record does not exist."""
    hydroshare_missing = "0" * 32
    standin.json(
        f"https://www.hydroshare.org/hsapi/resource/{hydroshare_missing}/scimeta/elements",
        recorded("hydroshare_not_found"),
        status=404,
    )
    config = cli_config(
        request,
        standin,
        proxy,
        builder=None,
        allowed_repos=["figshare:*", "dataverse:*", "hydroshare:*", "swh:*", "hg:*"],
    )
    for args, message in (
        (["https://figshare.com/articles/binder"], "a Figshare URL is https://figshare.com/"),
        (["10.6084/m9.figshare.9782777", "--ref", "main"], "give no ref"),
        (
            [f"{DV_HOST}/dataset.xhtml?persistentId={DV_PID}&version=v2"],
            "<major>.<minor>",
        ),
        (["https://localhost/dataset.xhtml?persistentId=doi:10.1/x"], "localhost is this"),
        (
            [f"https://www.hydroshare.org/resource/{hydroshare_missing}"],
            f"HydroShare resource {hydroshare_missing} on www.hydroshare.org does not exist",
        ),
        (["ckan:https://demo.ckan.org/dataset/binder-example"], "is not in allowed_repos"),
        (["swh:1:cnt:" + "0" * 40], "give a directory (swh:1:dir:…) or a revision"),
        (["hg+http://127.0.0.1:9/repo@-r"], "is not a Mercurial URL"),
    ):
        refused = run_cli(*args, config=config)
        assert (refused.returncode, args) == (2, args), refused.stderr
        assert message in refused.stderr, refused.stderr
        assert refused.stdout == ""
    assert builds(config) == []
    assert standin.asked == [
        f"https://www.hydroshare.org/hsapi/resource/{hydroshare_missing}/scimeta/elements"
    ]
    assert proxy.refused == []


def test_the_cli_says_a_provider_that_is_down_is_no_bad_request(
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    """Figshare's API answers 503: exit status 1 (a temporary error, not the request's),
    the provider named, nothing on standard output and nothing recorded (so nothing is
    remembered against the record)."""
    standin.json(FIGSHARE, {"message": "unavailable"}, status=503)
    config = cli_config(request, standin, proxy, builder=None)
    down = run_cli("10.6084/m9.figshare.9782777", config=config)
    assert down.returncode == 1, down.stderr
    assert "api.figshare.com answered 503" in down.stderr, down.stderr
    assert down.stdout == ""
    assert builds(config) == []
