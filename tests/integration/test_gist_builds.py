"""Gists built end to end by a real ``binderhub-service serve`` process and by the CLI
(issue 25). A gist is a git repository at ``https://gist.github.com/<id>``: here a real
one, served by real git (``git http-backend``) over HTTPS under the real host name, with
a certificate of a test CA. The test machines cannot resolve ``gist.github.com``: the
service's ``git ls-remote`` and repo2docker's ``git clone`` in the build reach it only
through ``providers.proxy`` (a CONNECT proxy that tunnels ``gist.github.com:443`` to the
server and refuses the rest) and trust it only through ``ca_bundle``.

Each gist holds a Dockerfile whose RUN step names the gist's revision, so the build log
says which commit was built; the image's tag is the commit.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.certs import make_ca, server_for_names
from testkit.components import (
    GitRepo,
    Registry,
    ServiceProcess,
    dockerfile,
    git,
    in_registry,
    legacy_repo2docker,
)

from .forge_standins import HttpGitServer, start_http_git_server
from .provider_standins import ConnectProxy
from .test_binderhub_stream import records, stream
from .test_cli import run_cli
from .test_http_api import wait_for_state

GIST_HOST = "gist.github.com"
StartServer = Callable[..., ServiceProcess]


@dataclass
class GistHost:
    """``git http-backend`` over HTTPS for ``gist.github.com`` (its certificate signed by
    the CA ``ca``), serving each gist's repository at ``/<id>``."""

    server: HttpGitServer
    ca: Path

    def create(self, revision: str) -> tuple[str, GitRepo]:
        """A new gist (a 32-hex id, as GitHub gives them now) whose one commit, on
        ``main``, builds an image that says ``built-gist-<revision>``."""
        gist_id = uuid.uuid4().hex
        path = self.server.base / gist_id
        path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=path)
        repo = GitRepo(path, f"https://{GIST_HOST}/{gist_id}")
        repo.commit({"Dockerfile": dockerfile(f"RUN echo built-gist-{revision}")}, revision)
        return gist_id, repo


def revise(repo: GitRepo, revision: str) -> str:
    """Edit the gist (a new commit on ``main``, as editing a gist on GitHub makes one)."""
    return repo.commit({"Dockerfile": dockerfile(f"RUN echo built-gist-{revision}")}, revision)


@pytest.fixture
def gists(tmp_path: Path) -> Iterator[GistHost]:
    make_ca(tmp_path / "ca", "gist test CA")
    chain = server_for_names(tmp_path / "server", tmp_path / "ca", [GIST_HOST], "gist")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, tmp_path / "server" / "gist-key.pem")
    (tmp_path / "gists").mkdir()
    server = start_http_git_server(tmp_path / "gists", lambda _: True, tls=context)
    yield GistHost(server, tmp_path / "ca" / "ca.pem")
    server.stop()


@pytest.fixture
def proxy(gists: GistHost) -> Iterator[ConnectProxy]:
    server = ConnectProxy(frozenset({GIST_HOST}), gists.server.port)
    yield server
    server.stop()


@pytest.fixture
def start(start_server: StartServer, gists: GistHost, proxy: ConnectProxy) -> StartServer:
    """A server that reaches gist.github.com only through ``providers.proxy``, trusting
    the test CA through ``ca_bundle``; resolutions of moving refs are not kept."""

    def start_one(**settings: Any) -> ServiceProcess:
        return start_server(
            providers={"proxy": proxy.url},
            ca_bundle=str(gists.ca),
            ref_cache_seconds=0,
            **settings,
        )

    return start_one


def build_log(client: Any, build_id: str) -> str:
    return str(client.get(f"/api/v1/builds/{build_id}/logs").text)


def built_by_stream(server: ServiceProcess, spec: str) -> str:
    """The image a stream's build ends with; fails unless it was built (not found)."""
    events = stream(server, spec)
    assert events[-1]["phase"] == "ready", events
    assert events[-1]["message"] != "Done! Found built image\n", events
    return str(events[-1]["imageName"])


def found_by_stream(server: ServiceProcess, spec: str) -> str:
    """The image a stream finds built: one ``ready`` event, nothing built."""
    events = stream(server, spec)
    assert [e["phase"] for e in events] == ["ready"], events
    assert events[0]["message"] == "Done! Found built image\n", events
    return str(events[0]["imageName"])


def test_a_gist_builds_at_its_commit_through_the_api_and_the_stream(
    start: StartServer, gists: GistHost, proxy: ConnectProxy, registry: Registry
) -> None:
    gist_id, repo = gists.create("one")
    first = git("rev-parse", "HEAD", cwd=repo.path)
    url = f"https://{GIST_HOST}/{gist_id}"
    server = start()
    with server.client() as client:
        # the page's URL, with its owner: the owner is no part of the gist's name
        page = f"https://{GIST_HOST}/alice/{gist_id}"
        response = client.post("/api/v1/builds", json={"repo": page})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["sha"]) == (url, first)
        assert body["image"].endswith(f":{first}")
        assert "alice" not in body["image"]
        resolved = len(proxy.tunnelled)  # the service's ls-remote went through the proxy
        assert resolved >= 1
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-gist-one" in build_log(client, body["id"])
    assert in_registry(registry.url, body["image"])
    assert len(proxy.tunnelled) > resolved  # and so did the build's clone
    assert proxy.refused == []

    # a second request, in every spelling and by another owner's name: a cache hit
    tunnels = len(proxy.tunnelled)
    assert found_by_stream(server, f"gist/alice/{gist_id}/{first}") == body["image"]
    assert found_by_stream(server, f"gist/bob/{gist_id}") == body["image"]
    assert found_by_stream(server, f"gist/alice/{gist_id}/main") == body["image"]
    with server.client() as client:
        spec = client.post("/api/v1/builds", json={"provider": "gist", "spec": f"bob/{gist_id}"})
        assert (spec.status_code, spec.json()["outcome"]) == (200, "cached"), spec.text
        assert spec.json()["image"] == body["image"]
        again = client.post("/api/v1/builds", json={"repo": f"{url}.git"})  # the clone URL
        assert (again.status_code, again.json().get("image")) == (200, body["image"]), again.text
    assert len(records(server)) == 1
    assert len(proxy.tunnelled) > tunnels  # HEAD and main were asked again (no cache)

    # an edit of the gist is a new commit: built through the stream under its own tag
    second = revise(repo, "two")
    image_two = built_by_stream(server, f"gist/alice/{gist_id}")
    assert image_two.endswith(f":{second}")
    assert image_two.rpartition(":")[0] == body["image"].rpartition(":")[0]
    third = revise(repo, "three")
    image_three = built_by_stream(server, f"gist/alice/{gist_id}/{third}")
    assert image_three.endswith(f":{third}")
    by_sha = {build.sha: build for build in records(server)}
    assert set(by_sha) == {first, second, third}
    with server.client() as client:
        assert "built-gist-two" in build_log(client, by_sha[second].id)
        assert "built-gist-three" in build_log(client, by_sha[third].id)
        assert "built-gist-two" not in build_log(client, by_sha[third].id)
    # the first commit stays built under its tag
    assert found_by_stream(server, f"gist/alice/{gist_id}/{first}") == body["image"]
    assert all(in_registry(registry.url, image) for image in (image_two, image_three))
    assert proxy.refused == []


def test_the_cli_builds_a_gist_and_then_finds_it(
    gists: GistHost, proxy: ConnectProxy, registry: Registry, unique: str, tmp_path: Path
) -> None:
    gist_id, repo = gists.create("cli")
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "image_prefix": f"{registry.host}/t{unique}-",
                "state_path": str(tmp_path / "state.sqlite"),
                "repo2docker": legacy_repo2docker(),
                "providers": {"proxy": proxy.url},
                "ca_bundle": str(gists.ca),
            }
        )
    )
    built = run_cli(f"https://{GIST_HOST}/alice/{gist_id}", config=config)
    assert built.returncode == 0, built.stderr
    image = built.stdout.strip()
    assert image.startswith(f"{registry.host}/t{unique}-gist-github-com-{gist_id}-")
    assert image.endswith(f":{sha}")
    assert "built-gist-cli" in built.stderr
    assert in_registry(registry.url, image)

    cached = run_cli(f"https://{GIST_HOST}/{gist_id}", "--ref", "main", config=config)
    assert (cached.returncode, cached.stdout.strip()) == (0, image), cached.stderr
    assert "exists already" in cached.stderr
    assert proxy.refused == []


BAD_GISTS: list[tuple[str, dict[str, str], int, str]] = [
    ("no id", {"repo": f"https://{GIST_HOST}/alice"}, 400, "a gist is https://gist.github.com/"),
    ("id of no gist's form", {"repo": f"https://{GIST_HOST}/alice/not-a-gist"}, 400, "a gist is"),
    ("a revision that is no commit", {"repo": f"https://{GIST_HOST}/alice/ID/dev"}, 400,
     "a gist's revision is its 40-digit commit SHA"),
    ("a spec without an id", {"provider": "gist", "spec": "alice"}, 400, "gist/<user>/<id>"),
    ("a malformed id in a spec", {"provider": "gist", "spec": "alice/xyz!"}, 400, "a gist is"),
    ("credentials in the URL", {"repo": f"https://u:p@{GIST_HOST}/ID"}, 400, "credentials"),
    ("an unknown gist", {"repo": f"https://{GIST_HOST}/alice/UNKNOWN"}, 422,
     f"https://{GIST_HOST}/UNKNOWN"),
    ("an unknown gist's spec", {"provider": "gist", "spec": "alice/UNKNOWN/main"}, 422,
     f"https://{GIST_HOST}/UNKNOWN"),
    ("a branch the gist lacks", {"provider": "gist", "spec": "alice/ID/master"}, 422,
     "no branch or tag named 'master'"),
]  # fmt: skip


def test_bad_gists_are_refused_naming_them_and_nothing_is_recorded(
    start: StartServer, gists: GistHost, proxy: ConnectProxy
) -> None:
    gist_id, _ = gists.create("bad")
    unknown = uuid.uuid4().hex
    server = start()
    with server.client() as client:
        for name, body, status, message in BAD_GISTS:
            body = {
                k: v.replace("UNKNOWN", unknown).replace("ID", gist_id) for k, v in body.items()
            }
            answer = client.post("/api/v1/builds", json=body)
            assert answer.status_code == status, (name, answer.text)
            expected = message.replace("UNKNOWN", unknown)
            assert expected in answer.json()["error"], (name, answer.text)
    for spec, status, message in [
        ("gist/alice", 400, "gist/<user>/<id>[/<ref>]"),
        ("gist/alice/xyz!/main", 400, "a gist is"),
        (f"gist/alice/{unknown}", 422, f"https://{GIST_HOST}/{unknown}"),
    ]:
        events = stream(server, spec)
        assert [(e["phase"], e["status_code"]) for e in events] == [("failed", status)], events
        assert message in events[0]["message"], events
    assert records(server) == []
    # what was malformed asked nothing; only the unknown gist (and the branch) were asked
    assert {target for _, target in proxy.tunnelled} <= {f"{GIST_HOST}:443"}
    assert proxy.refused == []
