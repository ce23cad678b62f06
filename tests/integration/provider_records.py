"""What the end-to-end record tests (issue 25) share: the providers' host names, the
stand-in and proxy fixtures and a ``serve`` that reaches them (``start``; ``start_current``
for repo2docker 2026.4 with buildkitd), and for each provider the records the stand-in
serves: a Zenodo version (``publish``), a Dataverse version (``publish_dataverse``), a
HydroShare modification (``modify_resource``), a CKAN activity (``publish_dataset``), a
Software Heritage archive (``archive``), a Mercurial repository (``hg_repo``,
``hg_commit``). Not collected by pytest; the test modules import what they use (fixtures
too, by name).

The stand-in (``provider_standins``) serves recorded answers of each provider's API under
its real host name; a record's content holds a Dockerfile whose RUN step names the
version, so the build log says which version was built. Dataverse datasets are fetched by
builder/'s ``Dataverse`` content provider, which fetches the version it is handed; a
version's one file is such a Dockerfile.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from testkit.buildkit import BuildKitDaemon
from testkit.components import (
    BASE_IMAGE,
    Registry,
    ServiceProcess,
    dockerfile,
    free_port,
    git,
    wait_until,
)
from tests.conftest import ROOT

from .conftest import REGISTRY_AUTH
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_binderhub_stream import records

StartServer = Callable[..., ServiceProcess]
HOSTS = [
    "zenodo.org",
    "doi.org",
    "dataverse.harvard.edu",
    "api.figshare.com",
    "ndownloader.figshare.com",
    "archive.softwareheritage.org",
    "www.hydroshare.org",
    "s3.hydroshare.org",
    "demo.ckan.org",
]
ZENODO = "https://zenodo.org/api/records"
CONCEPT = "3242074"
DOI = f"10.5281/zenodo.{CONCEPT}"
PAGE = f"https://zenodo.org/records/{CONCEPT}"
FIGSHARE = "https://api.figshare.com/v2/articles/9782777"


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


@pytest.fixture
def start(
    start_server: StartServer, standin: ProviderStandIn, proxy: ConnectProxy
) -> Callable[..., ServiceProcess]:
    """A server that reaches the stand-ins: ``providers.proxy`` and the test CA in
    ``ca_bundle`` (for the service's resolver and for repo2docker in the build)."""

    def start_one(**settings: Any) -> ServiceProcess:
        providers = {"proxy": proxy.url, **settings.pop("providers", {})}
        return start_server(providers=providers, ca_bundle=str(standin.ca), **settings)

    return start_one


def record_zip(version: str, provider: str = "zenodo", base: str | None = None) -> bytes:
    """A Zenodo upload as GitHub's release integration makes it: one zip, one folder,
    with a Dockerfile whose RUN step names ``version``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "requirements-1.0/Dockerfile",
            dockerfile(
                f"RUN echo built-{provider}-version-{version}", **({"base": base} if base else {})
            ),
        )
    return out.getvalue()


def publish(
    standin: ProviderStandIn, version: str, *, size: int | None = None, base: str | None = None
) -> None:
    """Make ``version`` a record of the concept and its latest version: the recorded
    answers, renumbered; its one file a zip (what repo2docker unpacks)."""
    record = json.loads(json.dumps(recorded("zenodo_latest")).replace("3242081", version))
    record["files"] = record["files"][:1]
    if size is not None:
        record["files"][0]["size"] = size
    files = json.loads(json.dumps(recorded("zenodo_files")).replace("3242075", version))
    standin.json(f"{ZENODO}/{version}", record)
    standin.json(f"{ZENODO}/{version}/files", files)
    standin.content(files["entries"][0]["links"]["content"], record_zip(version, base=base))
    standin.redirect(f"{ZENODO}/{CONCEPT}", f"{ZENODO}/{version}")


def build_log(client: Any, build_id: str) -> str:
    return str(client.get(f"/api/v1/builds/{build_id}/logs").text)


def built_version(server: ServiceProcess, version: str) -> Any:
    """The build of ``version`` once it has finished, else None."""
    done = [b for b in records(server) if b.sha == version and b.state.finished]
    return done[0] if done else None


# Software Heritage and Mercurial

SWH = "https://archive.softwareheritage.org/api/1"
RECORDED_REVISION = "aafb16d69fd30ff58afdd69036a26047f3aebdc6"
RECORDED_DIRECTORY = "7834ef7e7c357ce2af928115c6c6a42b7e2a44e6"


def archive(
    standin: ProviderStandIn, tmp_path: Path, marker: str, base: str = BASE_IMAGE
) -> tuple[str, str]:
    """A small repository archived by the stand-in of Software Heritage: a git
    repository of a file of this clone and a Dockerfile whose RUN step prints ``marker``
    once that file is in the image. Its commit and tree are its revision and directory
    (a SWHID's hash is the git object id); the stand-in serves the recorded shapes for
    them and, through the vault (``POST`` then ``GET`` of ``vault/directory/<dir>/``,
    then its ``fetch_url``), a ``.tar.gz`` of the tree in a folder named after it, as
    the archive cooks it. ``base``: the Dockerfile's base image. Returns the revision and
    directory SWHIDs."""
    repo = tmp_path / "archived"
    repo.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "providers" / "README.md", repo / "README.md")
    (repo / "Dockerfile").write_text(
        dockerfile(
            "COPY README.md /tmp/archived-readme",
            f"RUN grep -q 'Recorded shapes' /tmp/archived-readme && echo built-swh-{marker}",
            base=base,
        )
    )
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "archived", cwd=repo)
    revision, directory = git("rev-parse", "HEAD", "HEAD^{tree}", cwd=repo).split()
    tarball = subprocess.run(
        ["git", "archive", "--format=tar.gz", f"--prefix={directory}/", "HEAD"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout

    def renumbered(name: str) -> Any:
        text = json.dumps(recorded(name))
        return json.loads(
            text.replace(RECORDED_REVISION, revision).replace(RECORDED_DIRECTORY, directory)
        )

    standin.json(f"{SWH}/revision/{revision}/", renumbered("swh_revision"))
    standin.json(f"{SWH}/directory/{directory}/", renumbered("swh_directory"))
    cooked = renumbered("swh_vault_directory")
    standin.json(f"{SWH}/vault/directory/{directory}/", cooked)
    standin.content(cooked["fetch_url"], tarball, "application/gzip")
    return f"swh:1:rev:{revision}", f"swh:1:dir:{directory}"


HG = str(Path(sys.executable).parent / "hg")  # installed with the service (pyproject)
HG_ENV = {**os.environ, "HGPLAIN": "1", "HGRCPATH": "", "HGUSER": "test <test@example.org>"}


def hg(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [HG, *args], cwd=cwd, check=True, capture_output=True, text=True, env=HG_ENV
    ).stdout.strip()


@pytest.fixture
def hg_repo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Mercurial repository served by a real ``hg serve`` on a free port, at
    ``http://127.0.0.1:<port>/repo``; yields that URL and the repository's directory."""
    with hg_served(tmp_path / "hg-repo", "127.0.0.1") as served:
        yield served


@contextlib.contextmanager
def hg_served(repo: Path, address: str) -> Iterator[tuple[str, Path]]:
    """A new Mercurial repository at ``repo`` served by a real ``hg serve`` on
    ``address`` and a free port, stopped at the end; gives its URL
    (``http://<address>:<port>/repo``) and ``repo``."""
    repo.mkdir()
    hg("init", cwd=repo)
    port = free_port()
    server = subprocess.Popen(
        [HG, "serve", "--address", address, "--port", str(port), "--prefix", "repo"],
        cwd=repo,
        env=HG_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{address}:{port}/repo"
    try:
        wait_until(lambda: subprocess.run([HG, "identify", url], env=HG_ENV).returncode == 0, 30)
        yield url, repo
    finally:
        server.terminate()
        server.wait(timeout=30)


def hg_commit(repo: Path, marker: str, base: str = BASE_IMAGE) -> str:
    """Commit a Dockerfile on ``base`` whose RUN step prints ``built-hg-<marker>``; the
    changeset's id."""
    (repo / "Dockerfile").write_text(dockerfile(f"RUN echo built-hg-{marker}", base=base))
    hg("addremove", "-q", cwd=repo)
    hg("commit", "-q", "-m", marker, cwd=repo)
    return hg("identify", "-r", ".", "-T", "{node}", cwd=repo)


# HydroShare and CKAN: no versions of their own, the modification time is the version.

HS_ID = "b8f6eae9d89241cf8b5904033460af61"
HS_PAGE = f"https://www.hydroshare.org/resource/{HS_ID}"
HS_META = f"https://www.hydroshare.org/hsapi/resource/{HS_ID}/scimeta/elements"
HS_BAG = f"https://www.hydroshare.org/django_s3/download/bags/{HS_ID}.zip"
HS_S3 = f"https://s3.hydroshare.org/bags/{HS_ID}.zip"  # where HS_BAG redirects when ready
CURRENT = {"version": "2026.4.0", "command": None}


@pytest.fixture
def start_current(
    start: Callable[..., ServiceProcess],
    auth_registry: Registry,
    buildkitd: BuildKitDaemon,
    unique: str,
) -> Callable[..., ServiceProcess]:
    """``start`` with repo2docker 2026.4 (builder/'s providers), buildkitd and the
    registry with auth."""

    def start_one(**settings: Any) -> ServiceProcess:
        user, password = REGISTRY_AUTH
        return start(
            image_prefix=f"{auth_registry.host}/t{unique}-",
            registry={"username": user, "password": password},
            repo2docker=CURRENT,
            buildkit={"host": buildkitd.address},
            **settings,
        )

    return start_one


def in_auth_registry(registry: Registry, image: str) -> bool:
    name, _, tag = image.partition("/")[2].rpartition(":")
    response = httpx.head(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, "
            "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.docker.distribution.manifest.list.v2+json"
        },
        auth=REGISTRY_AUTH,
    )
    return response.status_code == 200


def iso(seconds: int) -> str:
    """A modification time as HydroShare writes it (UTC, microseconds, ``Z``)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.123456Z")


def modify_resource(standin: ProviderStandIn, seconds: int, base: str) -> str:
    """The resource as modified at ``seconds``: its science metadata says so, and its
    bag holds a Dockerfile whose RUN step names that time. Returns the version."""
    meta = recorded("hydroshare_scimeta")
    meta["dates"][1]["start_date"] = iso(seconds)
    standin.json(HS_META, meta)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bag:
        bag.writestr(f"{HS_ID}/bagit.txt", "BagIt-Version: 0.97\n")
        bag.writestr(
            f"{HS_ID}/data/contents/Dockerfile",
            dockerfile(f"RUN echo built-hydroshare-version-{seconds}", base=base),
        )
    standin.redirect(HS_BAG, HS_S3)
    standin.content(HS_S3, out.getvalue())
    return f"{seconds}.123456"


CKAN_API = "https://demo.ckan.org/api/3/action"
CKAN_PAGE = "https://demo.ckan.org/dataset/binder-example"


def publish_dataset(standin: ProviderStandIn, seconds: int, activity: str, base: str) -> str:
    """The dataset as modified at ``seconds`` by ``activity`` (its newest): package_show
    by name and by id, the activities, the dataset as of the activity, and its one
    resource, an uploaded Dockerfile naming the time (at the same URL every time, as a
    file uploaded again is). Returns the version the service names."""
    package = recorded("ckan_package")
    dataset = package["result"]["id"]
    from datetime import UTC, datetime

    modified = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.519163")
    package["result"]["metadata_modified"] = modified
    resource = package["result"]["resources"][0]
    resource["url"] = resource["url"].replace("/download/dockerfile", "/download/Dockerfile")
    standin.json(f"{CKAN_API}/package_show?id=binder-example", package)
    standin.json(f"{CKAN_API}/package_show?id={dataset}", package)
    activities = recorded("ckan_activities")
    activities["result"][0]["id"] = activity
    standin.json(f"{CKAN_API}/package_activity_list?id={dataset}", activities)
    standin.json(
        f"{CKAN_API}/activity_data_show?id={activity}&object_type=package",
        {"help": "", "success": True, "result": package["result"]},
    )
    standin.content(
        resource["url"],
        dockerfile(f"RUN echo built-ckan-version-{seconds}", base=base).encode(),
        "application/octet-stream",
    )
    return f"{seconds}.519163-{activity}"


A1 = "2b9f4c1e-8d7a-4f3b-a6e5-1c0d9b8a7f6e"
A2 = "4c3b2a19-0f8e-4d7c-b6a5-948372615a0b"


# Dataverse

DV_HOST = "https://dataverse.harvard.edu"
DV_PID = "doi:10.7910/DVN/TJCLKP"
DV_QUERY = f"?persistentId={quote(DV_PID, safe='')}"
DV_PAGE = f"{DV_HOST}/dataset.xhtml?persistentId={DV_PID}"
DV_DOI = "10.7910/DVN/TJCLKP"
DV_LATEST = f"{DV_HOST}/api/datasets/:persistentId/{DV_QUERY}"


def version_url(version: str) -> str:
    return f"{DV_HOST}/api/datasets/:persistentId/versions/{version}{DV_QUERY}"


def publish_dataverse(server: ProviderStandIn, version: str, base: str | None = None) -> None:
    """Make ``version`` (``major.minor``) a released version of the dataset and its
    latest: the recorded answers with that version's number and one file of its own (a
    Dockerfile naming the version, with its MD5), served by the data access API."""
    major, minor = (int(part) for part in version.split("."))
    step = f"RUN echo built-dataverse-version-{version}"
    content = (dockerfile(step, base=base) if base else dockerfile(step)).encode()
    file_id = 5000000 + major * 100 + minor  # a file's id names one stored file
    entry = recorded("dataverse_version")["data"]["files"][0]
    entry = json.loads(json.dumps(entry))
    entry["label"] = entry["dataFile"]["filename"] = "Dockerfile"
    entry["dataFile"].update(id=file_id, filesize=len(content))
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    entry["dataFile"]["md5"] = entry["dataFile"]["checksum"]["value"] = md5
    data = recorded("dataverse_version")["data"]
    data.update(versionNumber=major, versionMinorNumber=minor, files=[entry])
    server.json(version_url(version), {"status": "OK", "data": data})
    dataset = recorded("dataverse_dataset")
    dataset["data"]["latestVersion"] = data
    server.json(DV_LATEST, dataset)
    server.content(f"{DV_HOST}/api/access/datafile/{file_id}", content, "text/plain")
