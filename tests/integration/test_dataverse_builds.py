"""Dataverse datasets built end to end by a real ``binderhub-service serve`` process
(issue 25): a dataset's latest version resolved by the service through the stand-in of
dataverse.harvard.edu under its real host name, the image named after that version, and
builder/'s ``Dataverse`` content provider handed that version only (``&version=``).

Covers the REST API (the dataset's page) and the stream (BinderHub's spelling, the DOI,
and an escaped URL); a version published between two requests, and between resolution
and build; refusals (not found, malformed, hosts the service must not be led to). The
datasets and fixtures are ``provider_records``'.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from testkit.components import Registry, ServiceProcess, in_registry, wait_until

from .provider_records import (  # noqa: F401 - fixtures
    DV_DOI,
    DV_HOST,
    DV_LATEST,
    DV_PAGE,
    DV_PID,
    build_log,
    proxy,
    publish,
    publish_dataverse,
    record_zip,
    standin,
    start,
    version_url,
)
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_binderhub_stream import records, stream
from .test_http_api import wait_for_state


def test_a_dataverse_dataset_builds_through_the_api_and_the_stream(
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    registry: Registry,
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    registry: Registry,
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
