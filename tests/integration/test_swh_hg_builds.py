"""Software Heritage and Mercurial sources built end to end by a real
``binderhub-service serve`` process (issue 25).

A SWHID (revision or directory, already immutable) resolved through the stand-in of the
archive under its real host name and fetched by repo2docker through the vault, via the
REST API and the stream (``/build/swh/<SWHID>``), then a cache hit that asks the archive
nothing; the archive down, a missing or malformed SWHID. A Mercurial ref resolved against
a real ``hg serve`` to its changeset, which repo2docker is handed; unknown refs and
repositories. The archive, the repository and the fixtures are ``provider_records``'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from testkit.components import Registry, ServiceProcess, free_port, in_registry

from .provider_records import (  # noqa: F401 - fixtures
    SWH,
    StartServer,
    archive,
    build_log,
    hg_commit,
    hg_repo,
    proxy,
    standin,
    start,
)
from .provider_standins import ConnectProxy, ProviderStandIn, recorded
from .test_binderhub_stream import records, stream
from .test_http_api import wait_for_state


def test_a_swhid_builds_through_the_api_and_the_stream_and_then_is_a_cache_hit(
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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
    start: Callable[..., ServiceProcess],  # noqa: F811
    standin: ProviderStandIn,  # noqa: F811
    proxy: ConnectProxy,  # noqa: F811
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


def test_a_mercurial_ref_builds_the_changeset_it_names_now(
    start_server: StartServer,
    registry: Registry,
    hg_repo: tuple[str, Path],  # noqa: F811
) -> None:
    """A branch resolved with ``hg identify`` against a real ``hg serve``, the image
    named after its changeset, repo2docker's Mercurial provider handed that changeset:
    a changeset committed after the first build builds under its own tag; a changeset
    asked by its id builds that one, and a third through the stream; an unknown ref or
    repository is 422, naming it."""
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

        # the stream has no Mercurial provider (BinderHub has none): its git provider
        # takes the hg+ URL, which names its kind itself
        third = hg_commit(repo, "third")
        spec = f"git/{quote(f'hg+{url}', safe='')}"
        events = stream(server, f"{spec}/{third}")  # "default" is still first's, cached
        assert events[-1]["phase"] == "ready", events
        assert events[-1]["imageName"].endswith(f":{third}")
        [third_build] = [b for b in records(server) if b.sha == third]
        assert "built-hg-third" in build_log(client, third_build.id)
        [found] = stream(server, f"{spec}/{third}")  # asked again: a cache hit
        assert (found["phase"], found["imageName"]) == ("ready", events[-1]["imageName"])

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
    built = {(b.provider, b.sha) for b in records(server)}
    assert built == {("hg", first), ("hg", second), ("hg", third)}
