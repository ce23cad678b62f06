"""What the intake and the local executor do with a record (issue 25,
docs/design-providers.md): ``allowed_repos`` checked against the record before any API
is asked, the image named after the resolved version, providers that do not build
refused, and repo2docker handed the resolved version with one content provider."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import pytest
from traitlets.config.loader import PyFileConfigLoader

from jobs import errors
from jobs.coordinator.record_intake import (
    asked_ref,
    check_record_allowed,
    record_target,
    resolve_record,
)
from jobs.executors.local.executor import provider_source
from jobs.repo2docker.command import proxy_environment, record_config, repo2docker_args
from jobs.settings import Repo2DockerSettings, load_settings
from jobs.sources.patterns import canonical_pattern
from jobs.sources.record_cache import RecordCache
from jobs.sources.record_versions import (
    dataverse_version,
    figshare_version,
    swh_version,
    zenodo_version,
)
from jobs.sources.records import (
    CONTENT_PROVIDER_CLASSES,
    DoiSource,
    RecordSource,
    RecordVersion,
    record_content,
    record_keys,
    record_page,
)

from .test_record_versions import recorded

CONCEPT = RecordSource("zenodo", "zenodo.org", "3242074")
VERSION = RecordSource("zenodo", "zenodo.org", "3242075")
LATEST = RecordVersion(
    "zenodo", "zenodo.org", "3242074", "3242081", "https://zenodo.org/records/3242081", 10, True
)
DATASET = RecordVersion(
    "dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP", "3.0", "c", 1, True
)
PREFIX = "registry.test/binder-"


class Resolver:
    """Answers ``answer`` and counts the calls."""

    def __init__(self, answer: RecordVersion | Exception) -> None:
        self.answer = answer
        self.calls = 0

    async def resolve(self, source: RecordSource | DoiSource) -> RecordVersion:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def settings(**values: Any) -> Any:
    return load_settings(None, image_prefix=PREFIX, **values)


@pytest.mark.parametrize(
    ("source", "pattern", "allowed"),
    [
        (CONCEPT, "*", True),
        (CONCEPT, "zenodo:*", True),
        (CONCEPT, "zenodo:zenodo.org/3242074", True),
        (CONCEPT, "zenodo:zenodo.org/1*", False),
        (CONCEPT, "doi:10.5281/*", True),
        (CONCEPT, "https://zenodo.org/*", True),
        (CONCEPT, "https://github.com/*", False),
        (CONCEPT, "figshare:*", False),
        (RecordSource("zenodo", "sandbox.zenodo.org", "1"), "doi:10.5281/*", False),
        (RecordSource("figshare", "figshare.com", "9782777"), "doi:10.6084/*", True),
        (
            RecordSource("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP"),
            "doi:10.7910/*",
            True,
        ),
        (
            RecordSource("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP"),
            "dataverse:dataverse.harvard.edu/*",
            True,
        ),
        (DoiSource("10.7910/dvn/tjclkp"), "doi:10.7910/*", True),
        (DoiSource("10.7910/dvn/tjclkp"), "zenodo:*", False),
        (DoiSource("10.7910/dvn/tjclkp"), "https://doi.org/*", False),
    ],
)
def test_allowed_repos_patterns_of_records(
    source: RecordSource | DoiSource, pattern: str, allowed: bool
) -> None:
    pattern = canonical_pattern(pattern)
    if allowed:
        check_record_allowed([pattern], source)
    else:
        with pytest.raises(errors.RepoNotAllowed, match="is not in allowed_repos"):
            check_record_allowed([pattern], source)


@pytest.mark.parametrize(
    "pattern", ["zenodo:*", "doi:10.5281/*", "dataverse:dataverse.harvard.edu/*", "swh:*"]
)
def test_record_patterns_are_kept_as_written_and_not_read_as_git_addresses(pattern: str) -> None:
    assert canonical_pattern(pattern) == pattern
    assert load_settings(None, allowed_repos=[pattern]).allowed_repos == [pattern]


def test_git_addresses_stay_git_patterns() -> None:
    assert canonical_pattern("git.example.org:team/*") == "ssh://git.example.org/team/*"


def test_record_keys_golden() -> None:
    assert record_keys(CONCEPT) == (
        "zenodo:zenodo.org/3242074",
        "https://zenodo.org/records/3242074",
        "doi:10.5281/zenodo.3242074",
    )
    assert record_keys(DoiSource("10.1234/x")) == ("doi:10.1234/x",)


def test_a_record_build_is_named_after_its_version_and_records_its_page() -> None:
    target = record_target(LATEST, "latest", PREFIX)
    assert target.page == "https://zenodo.org/records/3242074"
    assert target.ref == "latest"
    assert (target.resolved.sha, target.resolved.kind) == ("3242081", "record")
    assert target.image.startswith(f"{PREFIX}zenodo-zenodo-org-3242074-")
    assert target.image.endswith(":3242081")
    newer = record_target(RecordVersion(**{**LATEST.__dict__, "version": "3242090"}), "latest", "")
    assert newer.image.rpartition(":")[0] == target.image.rpartition(":")[0].removeprefix(PREFIX)


@pytest.mark.parametrize(
    ("source", "version", "ref"),
    [
        (CONCEPT, LATEST, "latest"),
        (VERSION, RecordVersion(**{**LATEST.__dict__, "moves": False}), "3242081"),
        (RecordSource("figshare", "figshare.com", "1", "2"), LATEST, "2"),
        (DoiSource("10.5281/x"), LATEST, "latest"),
    ],
)
def test_the_ref_of_a_record_build_is_what_was_asked(
    source: RecordSource | DoiSource, version: RecordVersion, ref: str
) -> None:
    assert asked_ref(source, version) == ref


def test_content_from_the_build_record_is_the_resolved_versions() -> None:
    """What the executor hands repo2docker (from the build's page and version) is what
    resolution said, for the recorded answers of each provider that builds."""
    zenodo = zenodo_version(CONCEPT, (200, recorded("zenodo_latest")))
    figshare = figshare_version(
        RecordSource("figshare", "figshare.com", "9782777"), (200, recorded("figshare_article"))
    )
    swhid = "swh:1:rev:aafb16d69fd30ff58afdd69036a26047f3aebdc6"
    swh = swh_version(
        RecordSource("swh", "archive.softwareheritage.org", swhid),
        (200, recorded("swh_revision")),
    )
    assert (swh.content, record_page("swh", swh.host, swh.record)) == (
        swhid,
        f"https://archive.softwareheritage.org/{swhid}",
    )
    dataverse = dataverse_version(
        RecordSource("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP"),
        (200, recorded("dataverse_dataset")),
    )
    for version in (zenodo, figshare, swh, dataverse):
        page = record_page(version.provider, version.host, version.record)
        assert record_content(version.provider, page, version.version) == version.content
    assert dataverse.content == (
        "https://dataverse.harvard.edu/dataset.xhtml"
        "?persistentId=doi:10.7910/DVN/TJCLKP&version=3.0"
    )
    # a persistent id with characters of a query is escaped, and read back as it is
    odd = record_content("dataverse", "https://x.test/dataset.xhtml?persistentId=doi:1/a&b", "1.0")
    assert odd == "https://x.test/dataset.xhtml?persistentId=doi:1/a%26b&version=1.0"


def resolve(values: dict[str, Any], source: RecordSource | DoiSource, resolver: Resolver) -> Any:
    cache = RecordCache(resolver, ttl=60)
    return asyncio.run(resolve_record(settings(**values), cache, source))


def test_a_zenodo_record_resolves_to_its_target() -> None:
    resolver = Resolver(LATEST)
    target = resolve({}, CONCEPT, resolver)
    assert (target.page, target.ref, target.image.rpartition(":")[2]) == (
        "https://zenodo.org/records/3242074",
        "latest",
        "3242081",
    )


def test_the_kubernetes_executor_takes_records_too() -> None:
    resolver = Resolver(LATEST)
    target = resolve({"executor": "kubernetes"}, CONCEPT, resolver)
    assert target.image.rpartition(":")[2] == "3242081"


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"allowed_repos": ["https://github.com/*"]}, errors.RepoNotAllowed, "allowed_repos"),
        ({"allowed_repos": ["figshare:*"]}, errors.RepoNotAllowed, "allowed_repos"),
    ],
)
def test_refusals_before_any_api_is_asked(
    values: dict[str, Any], error: type[Exception], message: str
) -> None:
    resolver = Resolver(LATEST)
    with pytest.raises(error, match=message):
        resolve(values, CONCEPT, resolver)
    assert resolver.calls == 0


def test_a_dataverse_dataset_resolves_to_its_target() -> None:
    source = RecordSource("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP")
    target = resolve({}, source, Resolver(DATASET))
    assert (target.page, target.ref, target.image.rpartition(":")[2]) == (
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP",
        "latest",
        "v3.0",
    )


def test_errors_of_resolution_pass_through() -> None:
    for error in (
        errors.ProviderUnavailable("zenodo.org answered 503"),
        errors.RecordNotFound("Zenodo record 1 on zenodo.org does not exist or is not public"),
        errors.RecordTooLarge("zenodo record 3242074 has 11 bytes of files"),
    ):
        with pytest.raises(type(error), match=str(error)):
            resolve({}, CONCEPT, Resolver(error))


def test_repo2docker_is_handed_the_content_and_no_ref() -> None:
    args = repo2docker_args(
        Repo2DockerSettings(),
        image="r.example/zenodo:3242081",
        repo="https://zenodo.org/records/3242081",
        sha=None,
        config_file="/c.py",
    )
    assert "--ref" not in args
    assert args[-1] == "https://zenodo.org/records/3242081"


def test_a_record_build_s_configuration_has_its_one_content_provider(tmp_path: Path) -> None:
    path = tmp_path / "repo2docker_config.py"
    path.write_text(record_config(CONTENT_PROVIDER_CLASSES["zenodo"], ["--x"]))
    with warnings.catch_warnings():  # repo2docker's imports warn of their own
        warnings.simplefilter("ignore", DeprecationWarning)
        config = PyFileConfigLoader(path.name, str(tmp_path)).load_config()
    [provider] = config.Repo2Docker.content_providers
    assert provider.__name__ == "Zenodo"
    assert provider.__module__.startswith("repo2docker.contentproviders")
    assert config.DockerEngine.extra_buildx_build_args == ["--x"]


def test_a_dataverse_build_s_configuration_carries_its_provider_s_source(tmp_path: Path) -> None:
    """builder/'s provider is written into the file: a repo2docker whose environment
    lacks the package (2024.7.0's virtualenv) loads it from there."""
    path = tmp_path / "repo2docker_config.py"
    dotted = CONTENT_PROVIDER_CLASSES["dataverse"]
    with warnings.catch_warnings():  # repo2docker's imports warn of their own
        warnings.simplefilter("ignore", DeprecationWarning)
        source = provider_source(dotted)
    assert source is not None
    assert provider_source(CONTENT_PROVIDER_CLASSES["zenodo"]) is None
    path.write_text(record_config(dotted, [], source))
    assert "import binderhub_service_builder" not in path.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config = PyFileConfigLoader(path.name, str(tmp_path)).load_config()
    [provider] = config.Repo2Docker.content_providers
    assert provider.__name__ == "Dataverse"
    url = "https://dv.test/dataset.xhtml?persistentId=doi:10.1/x&version=2.1"
    assert provider().detect(url) == {"host": "dv.test", "pid": "doi:10.1/x", "version": "2.1"}


def test_the_proxy_of_a_record_build() -> None:
    assert proxy_environment(None) == {}
    assert proxy_environment("http://proxy.test:3128")["HTTPS_PROXY"] == "http://proxy.test:3128"
