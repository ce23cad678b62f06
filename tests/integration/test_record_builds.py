"""Zenodo, Figshare and Dataverse records built end to end by a real ``binderhub-service
serve`` process (issue 25): resolved by the service through its stand-in under the real
host name, named after the resolved version, fetched by repo2docker (the real one, with a
real Docker daemon and registry) as that version only, through the same proxy and test
CA. The requests come through the REST API, the BinderHub stream path
``/build/zenodo/<DOI>`` and the CLI.

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
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from jobs.model import BuildState
from testkit.components import (
    Registry,
    ServiceProcess,
    dockerfile,
    in_registry,
    legacy_repo2docker,
    wait_until,
)

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
