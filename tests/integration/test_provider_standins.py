"""The content providers' APIs, as stand-ins under their real host names, reached the
way builds will reach them (issue 25, docs/design-providers.md): through a forward
proxy, trusting a test CA. The service's resolver (``RecordResolver`` over httpx) and
repo2docker itself (its ``requests``, configured by ``HTTPS_PROXY`` and
``REQUESTS_CA_BUNDLE``) each reach them, and nothing else."""

from __future__ import annotations

import asyncio
import io
import os
import ssl
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobs import errors
from jobs.sources.record_apis import RecordResolver
from jobs.sources.records import DoiSource, RecordSource, RecordVersion

from .provider_standins import ConnectProxy, ProviderStandIn, recorded

HOSTS = ["zenodo.org", "api.figshare.com", "doi.org", "dataverse.harvard.edu"]
ZENODO = "https://zenodo.org/api/records"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[ProviderStandIn]:
    server = ProviderStandIn(tmp_path / "standin", HOSTS)
    yield server
    server.stop()


@pytest.fixture
def proxy(standin: ProviderStandIn) -> Iterator[ConnectProxy]:
    server = ConnectProxy(standin.hosts, standin.port)
    yield server
    server.stop()


def resolve(
    standin: ProviderStandIn, proxy: ConnectProxy, source: RecordSource | DoiSource
) -> RecordVersion:
    async def run() -> RecordVersion:
        verify = ssl.create_default_context(cafile=str(standin.ca))
        async with httpx.AsyncClient(proxy=proxy.url, verify=verify, timeout=10) as client:
            return await RecordResolver(client).resolve(source)

    return asyncio.run(run())


def test_the_resolver_reaches_the_stand_ins_under_the_real_names(
    standin: ProviderStandIn, proxy: ConnectProxy
) -> None:
    standin.redirect(f"{ZENODO}/3242074", f"{ZENODO}/3242081")
    standin.json(f"{ZENODO}/3242081", recorded("zenodo_latest"))
    standin.json("https://doi.org/api/handles/10.7910/dvn/tjclkp", recorded("doi_handle"))
    standin.json(
        "https://dataverse.harvard.edu/api/datasets/:persistentId/"
        "?persistentId=doi%3A10.7910%2FDVN%2FTJCLKP",
        recorded("dataverse_dataset"),
    )
    latest = resolve(standin, proxy, RecordSource("zenodo", "zenodo.org", "3242074"))
    assert (latest.version, latest.content) == ("3242081", "https://zenodo.org/records/3242081")
    dataset = resolve(standin, proxy, DoiSource("10.7910/dvn/tjclkp"))
    assert (dataset.provider, dataset.version) == ("dataverse", "3.0")
    assert standin.asked == [
        f"{ZENODO}/3242074",
        f"{ZENODO}/3242081",
        "https://doi.org/api/handles/10.7910/dvn/tjclkp",
        "https://dataverse.harvard.edu/api/datasets/:persistentId/"
        "?persistentId=doi%3A10.7910%2FDVN%2FTJCLKP",
    ]
    assert proxy.refused == []


def test_a_host_without_a_stand_in_is_refused_and_temporary(
    standin: ProviderStandIn, proxy: ConnectProxy
) -> None:
    source = RecordSource("dataverse", "data.example.edu", "doi:10.5072/FK2/ABC")
    with pytest.raises(
        errors.ProviderUnavailable, match=r"data\.example\.edu could not be reached"
    ):
        resolve(standin, proxy, source)
    assert proxy.refused == ["data.example.edu:443"]
    assert standin.asked == []


def record_zip(marker: str) -> bytes:
    """A Zenodo upload as GitHub's release integration makes it: one zip, one folder."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("requirements-1.0/Dockerfile", f"FROM local/debian:bookworm\n# {marker}\n")
    return out.getvalue()


def test_repo2docker_fetches_exactly_the_version_it_is_handed(
    standin: ProviderStandIn, proxy: ConnectProxy, tmp_path: Path
) -> None:
    files = recorded("zenodo_files")
    content = files["entries"][0]["links"]["content"]
    standin.json(f"{ZENODO}/3242075", recorded("zenodo_record"))
    standin.json(f"{ZENODO}/3242075/files", files)
    standin.content(content, record_zip("zenodo record 3242075"))
    config = tmp_path / "repo2docker_config.py"
    config.write_text(
        "import repo2docker.contentproviders\n"
        "c.Repo2Docker.content_providers = [repo2docker.contentproviders.Zenodo]\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HTTPS_PROXY": proxy.url,
        "REQUESTS_CA_BUNDLE": str(standin.ca),
    }
    repo2docker = Path(sys.executable).parent / "repo2docker"
    done = subprocess.run(
        [
            str(repo2docker),
            "--no-build",
            "--config",
            str(config),
            "https://zenodo.org/records/3242075",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "# zenodo record 3242075" in done.stdout
    assert standin.asked == [f"{ZENODO}/3242075", f"{ZENODO}/3242075/files", content]
    assert proxy.refused == []
