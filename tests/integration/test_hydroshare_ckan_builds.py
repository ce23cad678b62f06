"""HydroShare resources and CKAN datasets built end to end by a real
``binderhub-service serve`` process (issue 25). They have no versions of their own: the
modification time is the version (for CKAN, with its newest activity), which names the
image; repo2docker checks it before and after its download, so a resource or dataset
modified during the build fails it (temporarily, nothing pushed under the old name).

Built with the service's default repo2docker (2026.4, whose environment holds builder/'s
content providers) on this session's buildkitd, pushing to the registry with auth
(``start_current``). Covers a new modification under its own tag, a modification during
the build, a HydroShare bag being prepared, and refusals. The records and fixtures are
``provider_records``'.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from testkit.components import Registry, ServiceProcess, wait_until

from .provider_records import (  # noqa: F401 - fixtures
    A1,
    A2,
    CKAN_API,
    CKAN_PAGE,
    HS_BAG,
    HS_ID,
    HS_META,
    HS_PAGE,
    HS_S3,
    build_log,
    in_auth_registry,
    modify_resource,
    proxy,
    publish_dataset,
    standin,
    start,
    start_current,
)
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_binderhub_stream import records, stream
from .test_buildkit import base_image, buildkitd  # noqa: F401 - fixtures
from .test_http_api import wait_for_state


def test_a_hydroshare_resource_builds_and_a_new_modification_gets_its_own_tag(
    start_current: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    start_current: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
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
    start_current: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
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


def test_a_ckan_dataset_builds_as_of_its_newest_activity_and_then_a_newer_one(
    start_current: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    start_current: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
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
