"""Mirrors and a CA bundle in the service itself (issue 23), with real git servers and
repo2docker: a repository asked for as ``https://github.com/...`` is resolved and cloned
from a local git server named by ``mirrors``, and built under its own name; a git server
over HTTPS with a test CA answers ``git ls-remote`` once ``ca_bundle`` holds that CA."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from jobs.naming import image_name_for
from testkit.certs import make_ca
from testkit.components import GitServer, ServiceProcess, dockerfile, git

from .forge_standins import FORGE_TOKEN, GitHubStandIn, HttpGitServer, start_http_git_server
from .test_forge_api import forge_repo
from .test_http_api import wait_for_state

StartServer = Callable[..., ServiceProcess]


def test_a_github_repository_is_resolved_and_cloned_from_its_mirror(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"{unique}/course", {"Dockerfile": dockerfile("COPY . /srv/")})
    asked = f"https://github.com/{unique}/course"
    mirror = {
        "prefix": f"https://github.com/{unique}",
        "url": f"git://127.0.0.1:{git_server.port}/{unique}",
    }
    server = start_server(mirrors=[mirror])
    prefix = yaml.safe_load(server.config.read_text())["image_prefix"]
    with server.client() as client:
        answer = client.post("/api/v1/builds", json={"repo": asked, "ref": "main"})
        assert answer.status_code == 202, answer.text
        build = answer.json()
        sha = git("rev-parse", "HEAD", cwd=repo.path)
        assert build["sha"] == sha  # what the mirror's main points at
        # the image and the record keep the URL asked for
        assert build["repo"] == asked
        assert build["image"] == image_name_for(prefix, asked, sha)
        done = wait_for_state(client, build["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", done.get("error")
        log = client.get(f"/api/v1/builds/{build['id']}/logs").text
        assert "github.com" not in log.replace(asked, "")  # nothing was fetched from GitHub
        # a branch the mirror lacks: named, with where it was asked
        missing = client.post("/api/v1/builds", json={"repo": asked, "ref": "nowhere"})
        assert missing.status_code == 422, missing.text
        assert asked in missing.json()["error"]
        assert f"git://127.0.0.1:{git_server.port}/{unique}/course" in missing.json()["error"]


def test_the_forge_api_asked_is_the_mirrors(
    git_server: GitServer, github: GitHubStandIn, start_server: StartServer, unique: str
) -> None:
    """The mirror's host is a GitHub Enterprise of the settings (the stand-in's API): the
    ref is resolved by its API, under the same owner/repo; github.com's API (a second
    stand-in) is never asked."""
    repo = git_server.create_repo(f"{unique}/api", {"Dockerfile": dockerfile()})
    github.repos[f"{unique}/api"] = forge_repo(repo)
    public = GitHubStandIn(FORGE_TOKEN)
    try:
        server = start_server(
            mirrors=[{"prefix": "https://github.com", "url": f"git://127.0.0.1:{git_server.port}"}],
            forges={
                "hosts": [
                    {"kind": "github", "url": "https://github.com", "api_url": public.api_url,
                     "token": FORGE_TOKEN},
                    {"kind": "github", "url": "http://127.0.0.1", "api_url": github.api_url,
                     "token": FORGE_TOKEN},
                ]
            },
        )  # fmt: skip
        asked = f"https://github.com/{unique}/api"
        with server.client() as client:
            answer = client.post("/api/v1/builds", json={"repo": asked, "ref": "main"})
            assert answer.status_code == 202, answer.text
            assert answer.json()["sha"] == git("rev-parse", "HEAD", cwd=repo.path)
            assert answer.json()["repo"] == asked
        assert github.requests_to("GET", f"/repos/{unique}/api/commits/heads/main")
        assert public.requests == []
    finally:
        public.stop()


@pytest.fixture
def https_git(git_server: GitServer, tmp_path: Path) -> Iterator[tuple[HttpGitServer, Path]]:
    make_ca(tmp_path / "ca", "institution CA")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tmp_path / "ca/server.pem"), str(tmp_path / "ca/server-key.pem"))
    server = start_http_git_server(git_server.base, lambda _: True, tls=context)
    yield server, tmp_path / "ca" / "ca.pem"
    server.stop()


def test_git_over_https_of_a_private_ca_needs_the_ca_bundle(
    git_server: GitServer,
    https_git: tuple[HttpGitServer, Path],
    start_server: StartServer,
    unique: str,
) -> None:
    server_https, ca = https_git
    git_server.create_repo(f"{unique}/private-ca", {"Dockerfile": dockerfile()})
    url = server_https.url(f"{unique}/private-ca")
    without = start_server()
    with without.client() as client:
        refused = client.post("/api/v1/builds", json={"repo": url, "ref": "main"})
        assert refused.status_code >= 400, refused.text
        assert "certificate" in refused.json()["error"].lower(), refused.text
    trusting = start_server(ca_bundle=str(ca))
    with trusting.client() as client:
        answer = client.post("/api/v1/builds", json={"repo": url, "ref": "main"})
        assert answer.status_code == 202, answer.text
