"""Pasted forge page URLs build the commit they name (issue 25), through the HTTP API,
against a real git HTTP server: tree and blob URLs (a ref with ``/`` followed by a
path), a pull request (its head ref), a commit; and the refusals, which record
nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from testkit.components import GitServer, ServiceProcess, dockerfile, git

from .forge_standins import HttpGitServer, start_http_git_server
from .test_http_api import records

StartServer = Callable[..., ServiceProcess]


@pytest.fixture
def http_git(git_server: GitServer) -> Iterator[HttpGitServer]:
    server = start_http_git_server(git_server.base, lambda authorizations: True)
    yield server
    server.stop()


def test_pasted_page_urls_build_the_commit_they_name(
    git_server: GitServer, http_git: HttpGitServer, start_server: StartServer, unique: str
) -> None:
    repo = git_server.create_repo(f"{unique}/team/repo", {"Dockerfile": dockerfile()})
    main = git("rev-parse", "HEAD", cwd=repo.path)
    feature = repo.commit({"docs/a.md": "a"}, branch="feature/x")
    head = repo.commit({"b.txt": "b"}, branch="proposal")
    git("update-ref", "refs/pull/7/head", head, cwd=repo.path)
    git("checkout", "-q", "main", cwd=repo.path)
    base = http_git.url(f"{unique}/team/repo")
    server = start_server()
    with server.client() as client:
        for page, ref, sha in (
            (f"{base}/tree/feature/x/docs", "feature/x", feature),
            (f"{base}/blob/main/Dockerfile", "main", main),
            (f"{base}/pull/7", "refs/pull/7/head", head),
            (f"{base}/commit/{main}", None, main),  # joins main's build: its ref
        ):
            response = client.post("/api/v1/builds", json={"repo": page})
            assert response.status_code in (200, 202), response.text
            body = response.json()
            assert (body["repo"], body["sha"]) == (base, sha), page
            assert ref is None or body["ref"] == ref, page
        assert records(server) == 3  # the commit URL asks for main's image again

        for wrong, status, message in (
            ({"repo": f"{base}/pull/7", "ref": "main"}, 400, "give no ref, or the one it names"),
            ({"repo": f"{base}/tree/nothing/here"}, 422, "has no branch or tag that"),
            ({"repo": "swh:1:cnt:" + "0" * 40}, 400, "give a directory (swh:1:dir:…)"),
        ):
            response = client.post("/api/v1/builds", json=wrong)
            assert response.status_code == status, response.text
            assert message in response.json()["error"]
        assert records(server) == 3
