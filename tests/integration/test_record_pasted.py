"""Record pages pasted as they are (issue 25): a CKAN dataset's page, with nothing in
front of it, is the CKAN dataset (as BinderHub's ``ckan`` provider takes it), through a
real ``binderhub-service serve`` and its stand-in under ``demo.ckan.org``
(``provider_standins``), built by the real repo2docker with builder/'s CKAN provider.
The forms themselves are golden in tests/unit/test_source_forms.py.
"""

from __future__ import annotations

from collections.abc import Callable

from testkit.components import Registry, ServiceProcess, in_registry

from .provider_records import (  # noqa: F401 - fixtures
    A1,
    CKAN_PAGE,
    build_log,
    proxy,
    publish_dataset,
    standin,
    start,
)
from .provider_standins import ConnectProxy, ProviderStandIn
from .test_binderhub_stream import records
from .test_http_api import wait_for_state


def test_a_bare_ckan_dataset_page_builds_the_dataset(
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
    registry: Registry,
) -> None:
    """The page as pasted resolves to the dataset's newest activity, and ``ckan:`` in
    front of it is the same image; a CKAN page on an address is refused (403) before
    anything is asked, as ``ckan:`` is."""
    version = publish_dataset(standin, 1700000000, A1, "local/debian:bookworm")
    server = start(allowed_repos=["ckan:*"])
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": CKAN_PAGE})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["sha"] == version
        said = client.post("/api/v1/builds", json={"repo": f"ckan:{CKAN_PAGE}"})
        assert said.json()["image"] == body["image"], said.text
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-ckan-version-1700000000" in build_log(client, body["id"])
        asked = len(standin.asked)
        inside = client.post("/api/v1/builds", json={"repo": "https://10.0.0.5/dataset/x1"})
        assert inside.status_code == 403, inside.text
        assert "10.0.0.5 is an IP address" in inside.json()["error"]
        assert len(standin.asked) == asked
    assert in_registry(registry.url, body["image"])
    assert proxy.refused == []
    assert [(b.provider, b.sha) for b in records(server)] == [("ckan", version)]
