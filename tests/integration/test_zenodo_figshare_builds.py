"""Zenodo and Figshare records built end to end by a real ``binderhub-service serve``
process (issue 25): each resolved by the service through its stand-in under the real host
name, named after the resolved version, fetched by repo2docker (the real one, with a real
Docker daemon and registry) as that version only, through the same proxy and test CA.

Zenodo: a concept DOI through the REST API, the BinderHub stream path
(``/build/zenodo/<DOI>``) and the CLI; a version published between two requests, and
between resolution and build; a record in ``repos`` checked for new versions; failures
(provider down, not found, restricted, too large, malformed) and ``allowed_repos``; the
service's default repo2docker (2026.4) with BuildKit. Figshare: an article's current and
an older version. The records and fixtures are ``provider_records``'.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.model import BuildState
from testkit.components import Registry, ServiceProcess, in_registry, legacy_repo2docker, wait_until

from .provider_records import (  # noqa: F401 - fixtures
    CONCEPT,
    DOI,
    FIGSHARE,
    PAGE,
    ZENODO,
    build_log,
    built_version,
    proxy,
    publish,
    record_zip,
    standin,
    start,
)
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_binderhub_stream import records, stream
from .test_buildkit import base_image, buildkit_settings, buildkitd  # noqa: F401 - fixtures
from .test_cli import run_cli
from .test_http_api import wait_for_state
from .test_pipeline import wait_finished


def test_a_zenodo_doi_builds_its_latest_version_through_the_api_and_the_stream(
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    registry: Registry,
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    registry: Registry,
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


def test_a_record_in_repos_builds_each_new_version_without_a_request(
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    registry: Registry,
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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


def test_a_figshare_article_builds_its_current_and_an_older_version(
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
    registry: Registry,
    unique: str,
    tmp_path: Path,
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
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
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
