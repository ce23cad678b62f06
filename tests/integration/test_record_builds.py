"""Records built end to end by a real ``binderhub-service serve`` process (issue 25):
Zenodo, Figshare, Dataverse, HydroShare, CKAN, Software Heritage and Mercurial, each
resolved by the service (through its stand-in under the real host name; Mercurial from a
real ``hg serve``), named after the resolved version, fetched by repo2docker (the real
one, with a real Docker daemon and registry) as that version only, through the same proxy
and test CA. The requests come through the REST API, the BinderHub stream path
(``/build/zenodo/<DOI>``, ...) and the CLI.

The stand-in (``provider_standins``) serves recorded answers of Zenodo's API; the
record's content is a zip holding a Dockerfile whose RUN step names the version, so the
build log says which version was built. Dataverse datasets (the tests after
``publish_dataverse``) are fetched by builder/'s ``Dataverse`` content provider, which
fetches the version it is handed; a version's one file is such a Dockerfile.
"""

from __future__ import annotations

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
import yaml

from jobs.model import BuildState
from testkit.buildkit import BuildKitDaemon
from testkit.components import (
    Registry,
    ServiceProcess,
    dockerfile,
    free_port,
    git,
    in_registry,
    legacy_repo2docker,
    wait_until,
)
from tests.conftest import ROOT

from .conftest import REGISTRY_AUTH
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_binderhub_stream import records, stream
from .test_buildkit import base_image, buildkit_settings, buildkitd  # noqa: F401 - fixtures
from .test_cli import run_cli
from .test_http_api import wait_for_state
from .test_pipeline import wait_finished

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


def test_a_zenodo_doi_builds_its_latest_version_through_the_api_and_the_stream(
    start: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    registry: Registry,
) -> None:
    publish(standin, "3242081")
    server = start()
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": DOI})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["ref"], body["sha"]) == (PAGE, "latest", "3242081")
        assert body["image"].endswith(":3242081")
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-zenodo-version-3242081" in build_log(client, body["id"])
    assert in_registry(registry.url, body["image"])
    # repo2docker fetched the version it was handed, never the concept
    assert standin.asked.count(f"{ZENODO}/{CONCEPT}") == 1  # the service's one resolution
    assert f"{ZENODO}/3242081/files" in standin.asked
    assert proxy.refused == []

    asked = len(standin.asked)
    events = stream(server, f"zenodo/{DOI}")
    assert events == [
        {
            "phase": "ready",
            "message": "Done! Found built image\n",
            "imageName": body["image"],
            "image": body["image"],
        }
    ]
    assert len(standin.asked) == asked  # the resolution was kept: Zenodo is not asked
    with server.client() as client:  # BinderHub's provider and spec, in the API's body
        spec = client.post("/api/v1/builds", json={"provider": "zenodo", "spec": DOI})
    assert (spec.status_code, spec.json()["outcome"]) == (200, "cached"), spec.text
    assert (spec.json()["repo"], spec.json()["image"]) == (PAGE, body["image"])
    assert len(standin.asked) == asked
    [build] = records(server)
    assert (build.provider, build.repo, build.sha) == ("zenodo", PAGE, "3242081")


def test_a_version_published_between_two_requests_builds_under_its_own_tag(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, registry: Registry
) -> None:
    publish(standin, "3242081")
    server = start(providers={"cache_seconds": 0})
    with server.client() as client:
        first = client.post("/api/v1/builds", json={"repo": f"https://doi.org/{DOI}"}).json()
        assert wait_for_state(client, first["id"], {"built", "failed"}, 300)["state"] == "built"

        publish(standin, "3242090")  # a new version of the record
        events = stream(server, f"zenodo/{DOI}")
        assert events[-1]["phase"] == "ready", events[-1]
        second = events[-1]["imageName"]
        assert second.endswith(":3242090")
        assert second.rpartition(":")[0] == first["image"].rpartition(":")[0]
        [newer] = [b for b in records(server) if b.sha == "3242090"]
        assert "built-zenodo-version-3242090" in build_log(client, newer.id)
        assert "built-zenodo-version-3242081" not in build_log(client, newer.id)

        # the older version stays built under its tag, and asking for it by its own
        # record is a cache hit
        assert in_registry(registry.url, first["image"])
        again = client.post("/api/v1/builds", json={"repo": "https://zenodo.org/records/3242081"})
        assert again.json()["outcome"] == "cached"
        assert again.json()["image"] == first["image"]
    assert {(b.sha, str(b.state)) for b in records(server)} == {
        ("3242081", "built"),
        ("3242090", "built"),
    }


def test_a_version_published_between_resolution_and_build_is_not_what_is_built(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, registry: Registry
) -> None:
    """The request resolves the concept to 3242081 and names the image after it; the
    build waits in the queue (the one build slot is held by another record's build,
    whose download the stand-in holds); meanwhile 3242090 is published. The image
    tagged 3242081 holds 3242081."""
    publish(standin, "3242081")
    other = "4000001"  # another record, which holds the only build slot
    record = json.loads(json.dumps(recorded("zenodo_record")).replace("3242075", other))
    record["conceptrecid"] = other
    files = json.loads(json.dumps(recorded("zenodo_files")).replace("3242075", other))
    standin.json(f"{ZENODO}/{other}", record)
    standin.json(f"{ZENODO}/{other}/files", files)
    download = files["entries"][0]["links"]["content"]
    standin.content(download, record_zip(other))
    release = standin.hold(download)
    server = start(limits={"max_concurrent_builds": 1})
    with server.client() as client:
        try:
            holder = client.post("/api/v1/builds", json={"repo": f"10.5281/zenodo.{other}"})
            assert holder.status_code == 202, holder.text
            wait_until(lambda: download in standin.asked, timeout=120)  # it is fetching
            asked = client.post("/api/v1/builds", json={"repo": DOI}).json()
            assert (asked["sha"], asked["state"]) == ("3242081", "queued")
            publish(standin, "3242090")
        finally:
            release.set()
        done = wait_for_state(client, asked["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, asked["id"])
        log = build_log(client, asked["id"])
        assert "built-zenodo-version-3242081" in log
        assert "built-zenodo-version-3242090" not in log
    assert in_registry(registry.url, asked["image"])
    assert asked["image"].endswith(":3242081")


def built_version(server: ServiceProcess, version: str) -> Any:
    """The build of ``version`` once it has finished, else None."""
    done = [b for b in records(server) if b.sha == version and b.state.finished]
    return done[0] if done else None


def test_a_record_in_repos_builds_each_new_version_without_a_request(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, registry: Registry
) -> None:
    """``repos`` names a concept DOI: the record checks (``providers.check_interval``)
    build its latest version with no request; while Zenodo is down, checks record
    nothing; a version published then is built at the next check, under its own tag,
    and the older image stays."""
    publish(standin, "3242081")
    concept = f"{ZENODO}/{CONCEPT}"
    server = start(repos=[{"url": DOI}], providers={"check_interval": 1, "cache_seconds": 0})
    wait_until(lambda: built_version(server, "3242081"), timeout=300)
    first = built_version(server, "3242081")
    assert (first.state, first.trigger, first.repo) == (BuildState.BUILT, "reconcile", PAGE)
    assert first.image.endswith(":3242081")
    assert in_registry(registry.url, first.image)

    standin.json(concept, {"message": "unavailable"}, status=503)  # Zenodo is down
    down_from = standin.asked.count(concept)
    wait_until(lambda: standin.asked.count(concept) >= down_from + 2, timeout=60)
    assert [b.sha for b in records(server)] == ["3242081"]  # no failure recorded

    publish(standin, "3242090")  # Zenodo is back, with a new version
    wait_until(lambda: built_version(server, "3242090"), timeout=300)
    second = built_version(server, "3242090")
    with server.client() as client:
        assert second.state == BuildState.BUILT, build_log(client, second.id)
        assert "built-zenodo-version-3242090" in build_log(client, second.id)
    assert second.image.endswith(":3242090")
    assert second.image.rpartition(":")[0] == first.image.rpartition(":")[0]
    assert in_registry(registry.url, first.image)
    assert {(b.sha, b.state, b.trigger) for b in records(server)} == {
        ("3242081", BuildState.BUILT, "reconcile"),
        ("3242090", BuildState.BUILT, "reconcile"),
    }
    assert "records: " + DOI + " cannot be checked now" in server.log()


def test_failures_of_records_are_answered_and_change_nothing(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, proxy: ConnectProxy
) -> None:
    server = start(providers={"max_record_bytes": 1_000_000})
    handle = recorded("doi_handle")
    elsewhere = json.loads(
        json.dumps(handle).replace(
            "https://dataverse.harvard.edu/citation?persistentId=doi:10.7910/DVN/TJCLKP",
            "https://data.example.org/articles/1",
        )
    )
    standin.json("https://doi.org/api/handles/10.1234/elsewhere", elsewhere)
    standin.json(f"{ZENODO}/1", recorded("zenodo_not_found"), status=404)
    standin.json(f"{ZENODO}/3242075", recorded("zenodo_restricted"))
    with server.client() as client:
        # the provider is down: 503 with Retry-After, and nothing is remembered
        standin.json(f"{ZENODO}/{CONCEPT}", {"message": "unavailable"}, status=503)
        down = client.post("/api/v1/builds", json={"repo": DOI})
        assert down.status_code == 503, down.text
        assert int(down.headers["retry-after"]) >= 1
        assert "zenodo.org answered 503" in down.json()["error"]
        [failed] = stream(server, f"zenodo/{DOI}")
        assert (failed["phase"], failed["status_code"]) == ("failed", 503)

        for wrong, status, message in (
            ({"repo": "10.5281/zenodo.1"}, 422, "Zenodo record 1 on zenodo.org does not exist"),
            ({"repo": "https://zenodo.org/records/3242075"}, 422, "is not open access"),
            ({"repo": "10.1234/elsewhere"}, 422, "leads to data.example.org"),
            ({"repo": "10.5281/"}, 400, "is not a DOI"),
            ({"repo": DOI, "ref": "main"}, 400, "give no ref"),
        ):
            response = client.post("/api/v1/builds", json=wrong)
            assert (response.status_code, wrong) == (status, wrong), response.text
            assert message in response.json()["error"], response.text
        [not_found] = stream(server, "zenodo/10.5281/zenodo.1")
        assert (not_found["status_code"], "does not exist" in not_found["message"]) == (422, True)

        # too large: refused before any build, repo2docker never asked for the files
        publish(standin, "3242081", size=2_000_000)
        large = client.post("/api/v1/builds", json={"repo": DOI})
        assert large.status_code == 422, large.text
        assert "has 2000000 bytes of files" in large.json()["error"]
        assert "at most 1000000 bytes" in large.json()["error"]
        assert f"{ZENODO}/3242081/files" not in standin.asked
        assert records(server) == []

        # the provider is back: the same request builds (the outage was not remembered)
        publish(standin, "3242081")
        back = client.post("/api/v1/builds", json={"repo": DOI})
        assert back.status_code == 202, back.text
        assert wait_for_state(client, back.json()["id"], {"built", "failed"}, 300)["state"] == (
            "built"
        )
    assert proxy.refused == []
    assert [b.sha for b in records(server)] == ["3242081"]


FIGSHARE = "https://api.figshare.com/v2/articles/9782777"


def test_a_figshare_article_builds_its_current_and_an_older_version(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, proxy: ConnectProxy
) -> None:
    current, first = recorded("figshare_article"), recorded("figshare_version")  # v3, v1
    standin.json(FIGSHARE, current)
    for article in (current, first):
        standin.json(f"{FIGSHARE}/versions/{article['version']}", article)
        url = article["files"][0]["download_url"]
        standin.content(url, record_zip(str(article["version"]), "figshare"))
    server = start()
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": "10.6084/m9.figshare.9782777"})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["ref"], body["sha"]) == (
            "https://figshare.com/articles/_/9782777",
            "latest",
            "3",
        )
        assert body["image"].endswith(":v3")
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-figshare-version-3" in build_log(client, body["id"])

        events = stream(server, "figshare/10.6084/m9.figshare.9782777.v1")
        assert events[-1]["phase"] == "ready", events[-1]
        assert events[-1]["imageName"].endswith(":v1")
        [older] = [b for b in records(server) if b.sha == "1"]
        assert (older.ref, older.provider) == ("1", "figshare")
        assert "built-figshare-version-1" in build_log(client, older.id)
    # repo2docker asked for the versions it was handed, never the unversioned article
    assert standin.asked.count(FIGSHARE) == 1  # the service's one resolution of "latest"
    assert f"{FIGSHARE}/versions/3" in standin.asked
    assert "https://example.org/large-file" not in standin.asked  # a link, not a file
    assert proxy.refused == []


def test_the_cli_builds_a_zenodo_doi_and_then_finds_it(
    standin: ProviderStandIn, proxy: ConnectProxy, registry: Registry, unique: str, tmp_path: Path
) -> None:
    publish(standin, "3242081")
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "image_prefix": f"{registry.host}/t{unique}-",
                "state_path": str(tmp_path / "state.sqlite"),
                "repo2docker": legacy_repo2docker(),
                "providers": {"proxy": proxy.url},
                "ca_bundle": str(standin.ca),
            }
        )
    )
    built = run_cli(DOI, config=config)
    assert built.returncode == 0, built.stderr
    image = built.stdout.strip()
    assert image.startswith(f"{registry.host}/t{unique}-zenodo-zenodo-org-{CONCEPT}-")
    assert image.endswith(":3242081")
    assert "built-zenodo-version-3242081" in built.stderr
    assert in_registry(registry.url, image)

    cached = run_cli(f"https://zenodo.org/records/{CONCEPT}", config=config)
    assert (cached.returncode, cached.stdout.strip()) == (0, image), cached.stderr
    assert "exists already" in cached.stderr

    missing = run_cli("10.5281/zenodo.1", config=config)  # the stand-in knows no record 1
    assert missing.returncode == 2
    assert "Zenodo record 1 on zenodo.org does not exist" in missing.stderr
    assert missing.stdout == ""


def test_allowed_repos_refuses_records_before_their_api_is_asked(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn
) -> None:
    """A DOI pattern decides whether doi.org is asked at all; the record a DOI leads to
    is checked again before its host is asked."""
    publish(standin, "3242081")
    handle = json.loads(
        json.dumps(recorded("doi_handle")).replace(
            "https://dataverse.harvard.edu/citation?persistentId=doi:10.7910/DVN/TJCLKP",
            "https://zenodo.org/records/3242081",
        )
    )
    standin.json("https://doi.org/api/handles/10.1234/to-zenodo", handle)
    server = start(allowed_repos=["doi:10.1234/*", "figshare:*"])
    with server.client() as client:
        for repo, asked in (
            (DOI, []),  # a Zenodo DOI, matched as doi:10.5281/... and zenodo:...
            ("https://zenodo.org/records/3242081", []),
            ("10.1234/to-zenodo", ["https://doi.org/api/handles/10.1234/to-zenodo"]),
        ):
            response = client.post("/api/v1/builds", json={"repo": repo})
            assert response.status_code == 403, response.text
            assert "is not in allowed_repos" in response.json()["error"]
            assert standin.asked == asked
            standin.asked.clear()
        [refused] = stream(server, f"zenodo/{DOI}")
        assert (refused["phase"], refused["status_code"]) == ("failed", 403)
    assert standin.asked == []
    assert records(server) == []


@pytest.mark.anyio
async def test_a_zenodo_record_builds_with_repo2docker_2026_and_buildkit(
    buildkit_settings: Callable[..., Any],  # noqa: F811
    start_service: Callable[..., Any],
    base_image: str,  # noqa: F811
    standin: ProviderStandIn,
    proxy: ConnectProxy,
) -> None:
    """The service's default repo2docker (2026.4, builder/'s buildkit engine) with the
    record's own configuration file (its content provider and the registry cache)."""
    publish(standin, "3242081", base=base_image)
    settings = buildkit_settings(providers={"proxy": proxy.url}, ca_bundle=standin.ca)
    service = await start_service(settings)
    outcome = await service.request(DOI)
    assert outcome.build is not None, outcome
    await wait_finished(service, outcome.build.id, within=300)
    done = service.get(outcome.build.id)
    assert done.state is BuildState.BUILT, done.error
    assert done.image.endswith(":3242081")
    assert await service.registry.has_image(done.image, use_cache=False)
    log = " ".join(message for _, message in service.store.logs(done.id))
    assert "built-zenodo-version-3242081" in log
    assert (await service.request(DOI)).status == "cached"
    assert proxy.refused == []


SWH = "https://archive.softwareheritage.org/api/1"
RECORDED_REVISION = "aafb16d69fd30ff58afdd69036a26047f3aebdc6"
RECORDED_DIRECTORY = "7834ef7e7c357ce2af928115c6c6a42b7e2a44e6"


def archive(standin: ProviderStandIn, tmp_path: Path, marker: str) -> tuple[str, str]:
    """A small repository archived by the stand-in of Software Heritage: a git
    repository of a file of this clone and a Dockerfile whose RUN step prints ``marker``
    once that file is in the image. Its commit and tree are its revision and directory
    (a SWHID's hash is the git object id); the stand-in serves the recorded shapes for
    them and, through the vault (``POST`` then ``GET`` of ``vault/directory/<dir>/``,
    then its ``fetch_url``), a ``.tar.gz`` of the tree in a folder named after it, as
    the archive cooks it. Returns the revision and directory SWHIDs."""
    repo = tmp_path / "archived"
    repo.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "providers" / "README.md", repo / "README.md")
    (repo / "Dockerfile").write_text(
        dockerfile(
            "COPY README.md /tmp/archived-readme",
            f"RUN grep -q 'Recorded shapes' /tmp/archived-readme && echo built-swh-{marker}",
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


def test_a_swhid_builds_through_the_api_and_the_stream_and_then_is_a_cache_hit(
    start: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    registry: Registry,
    tmp_path: Path,
) -> None:
    rev, directory = archive(standin, tmp_path, "archived")
    rev_hash, dir_hash = rev.rpartition(":")[2], directory.rpartition(":")[2]
    server = start()
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": rev})
        assert response.status_code == 202, response.text
        body = response.json()
        page = f"https://archive.softwareheritage.org/{rev}"
        assert (body["repo"], body["ref"], body["sha"]) == (page, rev, rev)
        assert body["image"].endswith(f":rev-{rev_hash}")
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-swh-archived" in build_log(client, body["id"])
        # the service asked the archive once; repo2docker fetched the revision's
        # directory through the vault
        assert standin.asked.count(f"{SWH}/revision/{rev_hash}/") == 2
        assert f"POST {SWH}/vault/directory/{dir_hash}/" in standin.asked
        assert f"{SWH}/vault/directory/{dir_hash}/raw/" in standin.asked

        events = stream(server, f"swh/{directory}")
        assert events[-1]["phase"] == "ready", events
        image = events[-1]["imageName"]
        assert image.endswith(f":dir-{dir_hash}")
        assert standin.asked.count(f"{SWH}/directory/{dir_hash}/") == 1

        # asked again: cache hits, and the archive is not asked (a SWHID never moves)
        asked = len(standin.asked)
        again = client.post("/api/v1/builds", json={"repo": f"{rev};origin=https://x.org/r"})
        assert (again.json()["outcome"], again.json()["image"]) == ("cached", body["image"])
        [found] = stream(server, f"swh/{directory}")
        assert (found["phase"], found["imageName"]) == ("ready", image)
        assert len(standin.asked) == asked
        [dir_build] = [b for b in records(server) if b.sha == directory]
        assert "built-swh-archived" in build_log(client, dir_build.id)
    assert in_registry(registry.url, body["image"])
    assert in_registry(registry.url, image)
    builds = {(b.provider, b.sha, str(b.state)) for b in records(server)}
    assert builds == {("swh", rev, "built"), ("swh", directory, "built")}
    assert proxy.refused == []


def test_swhid_failures_are_answered_and_change_nothing(
    start: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    tmp_path: Path,
) -> None:
    rev, _ = archive(standin, tmp_path, "after-the-outage")
    rev_hash = rev.rpartition(":")[2]
    missing = "swh:1:dir:" + "0" * 39 + "1"
    standin.json(f"{SWH}/directory/{'0' * 39}1/", recorded("swh_not_found"), status=404)
    served = standin.routes[f"{SWH}/revision/{rev_hash}/"]
    server = start()
    with server.client() as client:
        # the archive is down: 503 with Retry-After, and nothing is remembered
        standin.json(f"{SWH}/revision/{rev_hash}/", {"exception": "down"}, status=503)
        down = client.post("/api/v1/builds", json={"repo": rev})
        assert down.status_code == 503, down.text
        assert int(down.headers["retry-after"]) >= 1
        assert "archive.softwareheritage.org answered 503" in down.json()["error"]
        [failed] = stream(server, f"swh/{rev}")
        assert (failed["phase"], failed["status_code"]) == ("failed", 503)

        for repo, status, message in (
            (missing, 422, f"SWHID {missing} on archive.softwareheritage.org does not exist"),
            ("swh:1:dir:abc", 400, "is not a SWHID: it is swh:1:<type>:<40 hex digits>"),
            ("swh:1:cnt:" + "0" * 40, 400, "give a directory (swh:1:dir:…) or a revision"),
        ):
            response = client.post("/api/v1/builds", json={"repo": repo})
            assert (response.status_code, repo) == (status, repo), response.text
            assert message in response.json()["error"], response.text
            [event] = stream(server, f"swh/{repo}")
            assert (event["status_code"], message in event["message"]) == (status, True), event
        assert records(server) == []

        standin.routes[f"{SWH}/revision/{rev_hash}/"] = served  # the archive is back
        back = client.post("/api/v1/builds", json={"repo": rev})
        assert back.status_code == 202, back.text
        done = wait_for_state(client, back.json()["id"], {"built", "failed"}, 300)
        assert done["state"] == "built", build_log(client, back.json()["id"])
        assert "built-swh-after-the-outage" in build_log(client, back.json()["id"])
    assert proxy.refused == []
    assert [b.sha for b in records(server)] == [rev]


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
    repo = tmp_path / "hg-repo"
    repo.mkdir()
    hg("init", cwd=repo)
    port = free_port()
    server = subprocess.Popen(
        [HG, "serve", "--address", "127.0.0.1", "--port", str(port), "--prefix", "repo"],
        cwd=repo,
        env=HG_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/repo"
    try:
        wait_until(lambda: subprocess.run([HG, "identify", url], env=HG_ENV).returncode == 0, 30)
        yield url, repo
    finally:
        server.terminate()
        server.wait(timeout=30)


def hg_commit(repo: Path, marker: str) -> str:
    """Commit a Dockerfile whose RUN step prints ``marker``; the changeset's id."""
    (repo / "Dockerfile").write_text(dockerfile(f"RUN echo built-hg-{marker}"))
    hg("addremove", "-q", cwd=repo)
    hg("commit", "-q", "-m", marker, cwd=repo)
    return hg("identify", "-r", ".", "-T", "{node}", cwd=repo)


def test_a_mercurial_ref_builds_the_changeset_it_names_now(
    start_server: StartServer, registry: Registry, hg_repo: tuple[str, Path]
) -> None:
    """A branch resolved with ``hg identify`` against a real ``hg serve``, the image
    named after its changeset, repo2docker's Mercurial provider handed that changeset:
    a changeset committed after the first build builds under its own tag; a changeset
    asked by its id builds that one; an unknown ref or repository is 422, naming it."""
    url, repo = hg_repo
    first = hg_commit(repo, "first")
    server = start_server()
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": f"hg+{url}"})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["ref"], body["sha"]) == (url, "default", first)
        assert body["image"].endswith(f":{first}")
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-hg-first" in build_log(client, body["id"])
        again = client.post("/api/v1/builds", json={"repo": f"hg+{url}@default"})
        assert (again.json()["outcome"], again.json()["image"]) == ("cached", body["image"])

        second = hg_commit(repo, "second")
        asked = client.post("/api/v1/builds", json={"repo": f"hg+{url}@{second}"})
        assert asked.status_code == 202, asked.text
        assert (asked.json()["sha"], asked.json()["ref"]) == (second, second)
        done = wait_for_state(client, asked.json()["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, asked.json()["id"])
        log = build_log(client, asked.json()["id"])
        assert "built-hg-second" in log
        assert "built-hg-first" not in log

        closed = f"http://127.0.0.1:{free_port()}/repo"  # no server: temporary
        for repo_asked, status, message in (
            (f"hg+{url}@nosuch", 422, f"Mercurial repository {url} has no ref 'nosuch'"),
            (f"hg+{url}-missing", 422, f"Mercurial repository {url}-missing does not exist"),
            (f"hg+{closed}", 503, "could not be asked for 'default' with hg identify"),
            (f"hg+{url}@-r", 400, "is not a Mercurial URL"),
        ):
            refused = client.post("/api/v1/builds", json={"repo": repo_asked})
            assert refused.status_code == status, refused.text
            assert message in refused.json()["error"]
    assert in_registry(registry.url, body["image"])
    assert {(b.provider, b.sha) for b in records(server)} == {("hg", first), ("hg", second)}


# ---------------------------------------------------------------------------------------
# HydroShare and CKAN: no versions of their own, the modification time is the version.
# Built with the service's default repo2docker (2026.4, whose environment holds builder/'s
# content providers) on this session's buildkitd, pushing to the registry with auth.
# ---------------------------------------------------------------------------------------

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
    buildkitd: BuildKitDaemon,  # noqa: F811
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


def test_a_hydroshare_resource_builds_and_a_new_modification_gets_its_own_tag(
    start_current: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    auth_registry: Registry,
    base_image: str,  # noqa: F811
) -> None:
    first = modify_resource(standin, 1700000000, base_image)
    server = start_current(providers={"cache_seconds": 0})
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": HS_PAGE})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["ref"], body["sha"]) == (HS_PAGE, "latest", first)
        assert body["image"].endswith(f":{first}")
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-hydroshare-version-1700000000" in build_log(client, body["id"])
        assert in_auth_registry(auth_registry, body["image"])
        # repo2docker read the time before and after its download of the bag, which it
        # asked for at HydroShare and got from S3
        assert standin.asked.count(HS_META) == 3
        assert [u for u in standin.asked if "bags" in u] == [HS_BAG, HS_S3]

        # the stream, by id: a cache hit
        events = stream(server, f"hydroshare/{HS_ID}")
        assert events[-1]["phase"] == "ready", events
        assert events[-1]["imageName"] == body["image"]

        # modified again: the stream (an escaped URL) builds it under its own tag
        second = modify_resource(standin, 1700000500, base_image)
        events = stream(server, f"hydroshare/{quote(HS_PAGE, safe='')}")
        assert events[-1]["phase"] == "ready", events
        newer = events[-1]["imageName"]
        assert newer.endswith(f":{second}")
        assert newer.rpartition(":")[0] == body["image"].rpartition(":")[0]
        assert in_auth_registry(auth_registry, body["image"])  # the older image stays
        [build] = [b for b in records(server) if b.sha == second]
        assert "built-hydroshare-version-1700000500" in build_log(client, build.id)
    assert proxy.refused == []


def test_a_hydroshare_resource_modified_during_its_build_is_not_built_under_the_old_name(
    start_current: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    auth_registry: Registry,
    base_image: str,  # noqa: F811
) -> None:
    """The resource is resolved (and the image named) at T1; while repo2docker downloads
    the bag, the resource is modified (T2), and the bag it gets is T2's. The build fails,
    as a temporary failure: nothing is pushed under T1's tag, nothing is remembered, and
    the next request builds T2 under its own tag."""
    first = modify_resource(standin, 1700000000, base_image)
    download = standin.hold(HS_S3)
    server = start_current(providers={"cache_seconds": 0})
    with server.client() as client:
        try:
            asked = client.post("/api/v1/builds", json={"repo": HS_PAGE}).json()
            assert asked["sha"] == first
            wait_until(lambda: HS_S3 in standin.asked, timeout=120)  # it is downloading
            second = modify_resource(standin, 1700000500, base_image)
        finally:
            download.set()
        done = wait_for_state(client, asked["id"], {"built", "failed"}, timeout=300)
        log = build_log(client, asked["id"])
        assert done["state"] == "failed", log
        assert "was modified during the download" in log, log
        assert "built-hydroshare-version" not in log  # it stopped before building
        assert not in_auth_registry(auth_registry, asked["image"])
        [failed] = records(server)
        assert not failed.error_remembered
        assert (failed.error or "").startswith(
            "the record changed while it was fetched: HydroShare resource "
            f"{HS_ID} was modified during the download (modified 1700000500.123456, "
            "the image is named after 1700000000.123456)"
        ), failed.error

        again = client.post("/api/v1/builds", json={"repo": HS_PAGE})
        assert again.status_code == 202, again.text
        assert again.json()["sha"] == second
        done = wait_for_state(client, again.json()["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, again.json()["id"])
        assert "built-hydroshare-version-1700000500" in build_log(client, again.json()["id"])
    assert not in_auth_registry(auth_registry, asked["image"])


def test_a_hydroshare_bag_being_prepared_is_asked_for_again_until_it_is_ready(
    start_current: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    auth_registry: Registry,
    base_image: str,  # noqa: F811
) -> None:
    """HydroShare prepares a bag on demand: the first request answers 200 without
    redirecting to S3 (a page saying so), the next one redirects to the bag."""
    version = modify_resource(standin, 1700000000, base_image)
    standin.first(HS_BAG, (200, {"Content-Type": "text/html"}, b"<p>Preparing the bag</p>"))
    server = start_current(providers={"cache_seconds": 0})
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": HS_PAGE})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["sha"] == version
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        log = build_log(client, body["id"])
        assert done["state"] == "built", log
        assert "HydroShare is preparing the bag" in log, log
        assert "built-hydroshare-version-1700000000" in log
        assert in_auth_registry(auth_registry, body["image"])
        assert [u for u in standin.asked if "bags" in u] == [HS_BAG, HS_BAG, HS_S3]
        assert standin.asked.count(HS_META) == 3
    assert proxy.refused == []


def test_hydroshare_and_ckan_refusals_change_nothing(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn
) -> None:
    standin.json(
        "https://www.hydroshare.org/hsapi/resource/" + "0" * 32 + "/scimeta/elements",
        recorded("hydroshare_not_found"),
        status=404,
    )
    standin.json(f"{CKAN_API}/package_show?id=nothing", recorded("ckan_not_found"), status=404)
    server = start(allowed_repos=["hydroshare:*", "ckan:*"])
    with server.client() as client:
        for wrong, status, message in (
            (
                {"repo": "https://www.hydroshare.org/resource/" + "0" * 32},
                422,
                "HydroShare resource 00000000000000000000000000000000 on www.hydroshare.org "
                "does not exist",
            ),
            ({"repo": "https://www.hydroshare.org/resource/1234"}, 400, "a HydroShare URL is"),
            ({"repo": "ckan:https://demo.ckan.org/dataset/nothing"}, 422, "does not exist"),
            ({"repo": "ckan:https://demo.ckan.org/group/x"}, 400, "is no CKAN dataset"),
            # a CKAN on a host users name that is this machine is never asked
            (
                {"repo": "ckan:https://localhost/dataset/x1"},
                403,
                "localhost is this machine",
            ),
        ):
            response = client.post("/api/v1/builds", json=wrong)
            assert (response.status_code, wrong) == (status, wrong), response.text
            assert message in response.json()["error"], response.text
        [not_found] = stream(server, "hydroshare/" + "0" * 32)
        assert (not_found["status_code"], "does not exist" in not_found["message"]) == (422, True)
        [malformed] = stream(server, "hydroshare/1234")
        assert malformed["status_code"] == 400, malformed
        [malformed] = stream(server, "ckan/not-a-url")
        assert malformed["status_code"] == 400, malformed
        [missing] = stream(
            server, f"ckan/{quote('https://demo.ckan.org/dataset/nothing', safe='')}"
        )
        assert missing["status_code"] == 422, missing
    assert not any("data.example.org" in url for url in standin.asked)
    assert records(server) == []


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


def test_a_ckan_dataset_builds_as_of_its_newest_activity_and_then_a_newer_one(
    start_current: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    auth_registry: Registry,
    base_image: str,  # noqa: F811
) -> None:
    first = publish_dataset(standin, 1700000000, A1, base_image)
    server = start_current(providers={"cache_seconds": 0}, allowed_repos=["ckan:demo.ckan.org/*"])
    with server.client() as client:
        events = stream(server, f"ckan/{quote(CKAN_PAGE, safe='')}")
        assert events[-1]["phase"] == "ready", events
        image = events[-1]["imageName"]
        assert image.endswith(f":{first}")
        [build] = records(server)
        assert (build.provider, build.sha) == ("ckan", first)
        assert "built-ckan-version-1700000000" in build_log(client, build.id)
        # fetched as of the activity, the time checked before and after
        assert f"{CKAN_API}/activity_data_show?id={A1}&object_type=package" in standin.asked
        dataset = recorded("ckan_package")["result"]["id"]
        assert standin.asked.count(f"{CKAN_API}/package_show?id={dataset}") == 2

        cached = client.post("/api/v1/builds", json={"repo": f"ckan:{CKAN_PAGE}"})
        assert (cached.json()["outcome"], cached.json()["image"]) == ("cached", image)

        second = publish_dataset(standin, 1700000500, A2, base_image)
        response = client.post("/api/v1/builds", json={"repo": f"ckan:{CKAN_PAGE}"})
        assert response.status_code == 202, response.text
        newer = response.json()
        assert newer["image"].endswith(f":{second}")
        assert newer["image"].rpartition(":")[0] == image.rpartition(":")[0]
        done = wait_for_state(client, newer["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, newer["id"])
        assert "built-ckan-version-1700000500" in build_log(client, newer["id"])
    assert in_auth_registry(auth_registry, image)  # the older version stays
    assert proxy.refused == []


def test_a_ckan_dataset_modified_during_its_build_is_not_built_under_the_old_name(
    start_current: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    auth_registry: Registry,
    base_image: str,  # noqa: F811
) -> None:
    publish_dataset(standin, 1700000000, A1, base_image)
    url = recorded("ckan_package")["result"]["resources"][0]["url"].replace(
        "/download/dockerfile", "/download/Dockerfile"
    )
    download = standin.hold(url)
    server = start_current(allowed_repos=["ckan:demo.ckan.org/*"])
    with server.client() as client:
        try:
            asked = client.post("/api/v1/builds", json={"repo": f"ckan:{CKAN_PAGE}"}).json()
            wait_until(lambda: url in standin.asked, timeout=120)
            publish_dataset(standin, 1700000500, A2, base_image)  # uploaded again
        finally:
            download.set()
        done = wait_for_state(client, asked["id"], {"built", "failed"}, timeout=300)
        log = build_log(client, asked["id"])
        assert done["state"] == "failed", log
        assert "was modified during the download" in log, log
        assert "built-ckan-version" not in log
        [failed] = records(server)
        assert not failed.error_remembered
        assert (failed.error or "").startswith(
            "the record changed while it was fetched: CKAN dataset "
        ), failed.error
    assert not in_auth_registry(auth_registry, asked["image"])


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


def test_a_dataverse_dataset_builds_through_the_api_and_the_stream(
    start: Callable[..., ServiceProcess],
    standin: ProviderStandIn,
    proxy: ConnectProxy,
    registry: Registry,
) -> None:
    publish_dataverse(standin, "1.0")
    standin.json(f"https://doi.org/api/handles/{DV_DOI.lower()}", recorded("doi_handle"))
    server = start()
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": DV_PAGE})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["ref"], body["sha"]) == (DV_PAGE, "latest", "1.0")
        assert body["image"].endswith(":v1.0")
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-dataverse-version-1.0" in build_log(client, body["id"])
        assert "Picked Dataverse content provider" in build_log(client, body["id"])
    assert in_registry(registry.url, body["image"])
    # the service resolved "latest" once; repo2docker asked for version 1.0 only
    assert standin.asked.count(DV_LATEST) == 1
    assert version_url("1.0") in standin.asked
    assert f"{DV_HOST}/api/access/datafile/5000100" in standin.asked
    assert proxy.refused == []

    asked = len(standin.asked)
    with server.client() as client:
        again = client.post("/api/v1/builds", json={"repo": DV_PAGE}).json()
    assert (again["outcome"], again["image"]) == ("cached", body["image"])
    events = stream(server, f"dataverse/{DV_DOI}")  # BinderHub's spelling: the DV_DOI
    assert events[-1]["phase"] == "ready", events
    assert events[-1]["imageName"] == body["image"]
    # the page was kept; the DV_DOI asked doi.org once and the dataset's host once more
    assert standin.asked[asked:] == [f"https://doi.org/api/handles/{DV_DOI.lower()}", DV_LATEST]
    [build] = records(server)
    assert (build.provider, build.repo, build.sha) == ("dataverse", DV_PAGE, "1.0")


def test_a_new_dataverse_version_builds_under_its_own_tag(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, registry: Registry
) -> None:
    publish_dataverse(standin, "1.0")
    server = start(providers={"cache_seconds": 0})
    with server.client() as client:
        first = client.post("/api/v1/builds", json={"repo": DV_PAGE}).json()
        assert wait_for_state(client, first["id"], {"built", "failed"}, 300)["state"] == "built"

        publish_dataverse(standin, "2.0")  # a new version of the dataset
        events = stream(server, f"dataverse/{quote(DV_PAGE, safe='')}")
        assert events[-1]["phase"] == "ready", events[-1]
        second = events[-1]["imageName"]
        assert second.endswith(":v2.0")
        assert second.rpartition(":")[0] == first["image"].rpartition(":")[0]
        [newer] = [b for b in records(server) if b.sha == "2.0"]
        assert "built-dataverse-version-2.0" in build_log(client, newer.id)
        assert "built-dataverse-version-1.0" not in build_log(client, newer.id)

        # the older version stays built under its tag; asking for it by version is a hit
        assert in_registry(registry.url, first["image"])
        older = client.post("/api/v1/builds", json={"repo": f"{DV_PAGE}&version=1.0"}).json()
        assert (older["outcome"], older["image"]) == ("cached", first["image"])
    assert {(b.sha, str(b.state)) for b in records(server)} == {("1.0", "built"), ("2.0", "built")}


def test_a_dataverse_version_published_between_resolution_and_build_is_not_built(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, registry: Registry
) -> None:
    """The request resolves the dataset to 1.0 and names the image after it; the build
    waits in the queue (the one build slot is held by a Zenodo record's build, whose
    download the stand-in holds); meanwhile 2.0 is published. The image tagged v1.0
    holds 1.0."""
    publish_dataverse(standin, "1.0")
    publish(standin, "3242081")
    files = recorded("zenodo_files")
    download = json.loads(json.dumps(files).replace("3242075", "3242081"))["entries"][0]
    download = download["links"]["content"]
    standin.content(download, record_zip("3242081"))
    release = standin.hold(download)
    server = start(limits={"max_concurrent_builds": 1})
    with server.client() as client:
        try:
            holder = client.post("/api/v1/builds", json={"repo": "10.5281/zenodo.3242081"})
            assert holder.status_code == 202, holder.text
            wait_until(lambda: download in standin.asked, timeout=120)  # it is fetching
            asked = client.post("/api/v1/builds", json={"repo": DV_PAGE}).json()
            assert (asked["sha"], asked["state"]) == ("1.0", "queued")
            publish_dataverse(standin, "2.0")
        finally:
            release.set()
        done = wait_for_state(client, asked["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, asked["id"])
        log = build_log(client, asked["id"])
        assert "built-dataverse-version-1.0" in log
        assert "built-dataverse-version-2.0" not in log
    assert in_registry(registry.url, asked["image"])
    assert asked["image"].endswith(":v1.0")


def test_dataverse_refusals_are_answered_and_change_nothing(
    start: Callable[..., ServiceProcess], standin: ProviderStandIn, proxy: ConnectProxy
) -> None:
    """Not found, malformed, and hosts the service must not be led to (an IP address,
    this machine, a DV_DOI leading to a private address): 4xx naming the host, nothing
    recorded, and no request to any of them."""
    missing = "doi:10.7910/DVN/NOTHER"
    standin.json(
        f"{DV_HOST}/api/datasets/:persistentId/?persistentId={quote(missing, safe='')}",
        recorded("dataverse_not_found"),
        status=404,
    )
    to_private = json.loads(
        json.dumps(recorded("doi_handle")).replace(
            f"{DV_HOST}/citation?persistentId={DV_PID}",
            "https://10.0.0.5/dataset.xhtml?persistentId=doi:10.1234/inside",
        )
    )
    standin.json("https://doi.org/api/handles/10.1234/inside", to_private)
    server = start()
    with server.client() as client:
        for repo, status, message in (
            (f"{DV_HOST}/dataset.xhtml?persistentId={missing}", 422, "does not exist"),
            (f"{DV_HOST}/dataset.xhtml?persistentId={DV_PID}&version=v2", 400, "<major>.<minor>"),
            (f"{DV_HOST}/dataset.xhtml?id=3", 400, "a Dataverse URL is"),
            ("https://127.0.0.1/dataset.xhtml?persistentId=doi:10.1/x", 403, "127.0.0.1 is an IP"),
            ("https://[::1]:8443/dataset.xhtml?persistentId=doi:10.1/x", 403, "[::1]:8443 is an"),
            ("https://localhost/dataset.xhtml?persistentId=doi:10.1/x", 403, "localhost is this"),
            ("10.1234/inside", 403, "10.0.0.5 is an IP address"),
        ):
            response = client.post("/api/v1/builds", json={"repo": repo})
            assert (response.status_code, repo) == (status, repo), response.text
            assert message in response.json()["error"], response.text
        local = "https://localhost/dataset.xhtml?persistentId=doi:10.1/x"
        [failed] = stream(server, f"dataverse/{quote(local, safe='')}")
        assert (failed["phase"], failed["status_code"]) == ("failed", 403)
        [bad] = stream(server, "dataverse/https%3A%2F%2Fgithub.com%2Fo%2Fr")
        assert (bad["phase"], bad["status_code"]) == ("failed", 400)
    assert records(server) == []
    # asked: the missing dataset and the DV_DOI's handle; never an internal host
    assert standin.asked == [
        f"{DV_HOST}/api/datasets/:persistentId/?persistentId={quote(missing, safe='')}",
        "https://doi.org/api/handles/10.1234/inside",
    ]
    assert proxy.refused == []
    assert proxy.tunnelled
    assert all(
        target in ("dataverse.harvard.edu:443", "doi.org:443") for _, target in proxy.tunnelled
    )
