"""One repository, one identity, against a real git HTTP server (issue #12, item 3).

The server decodes request paths and resolves their dot segments, as nginx and Apache
do, so ``/allowed/%2E%2E/private`` reaches ``/private`` there: what ``allowed_repos``
checks has to be what git fetches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from testkit.components import GitServer, ServiceProcess, dockerfile

from .forge_standins import HttpGitServer, start_http_git_server
from .test_http_api import records

StartServer = Callable[..., ServiceProcess]


@pytest.fixture
def http_git(git_server: GitServer) -> Iterator[HttpGitServer]:
    server = start_http_git_server(git_server.base, lambda authorizations: True)
    yield server
    server.stop()


def test_allowed_repos_applies_to_what_git_fetches(
    git_server: GitServer, http_git: HttpGitServer, start_server: StartServer, unique: str
) -> None:
    git_server.create_repo(f"{unique}/allowed/repo", {"Dockerfile": dockerfile()})
    git_server.create_repo(f"{unique}/private", {"Dockerfile": dockerfile()})
    server = start_server(allowed_repos=[http_git.url(f"{unique}/allowed/*")])
    with server.client() as client:
        for escape in ("%2E%2E", "%2e%2E", ".%2E"):
            sneaky = http_git.url(f"{unique}/allowed/{escape}/private")
            response = client.post("/api/v1/builds", json={"repo": sneaky, "ref": "main"})
            assert 400 <= response.status_code < 500, response.text
            assert "'..'" in response.json()["error"]
        assert records(server) == 0

        first = client.post(
            "/api/v1/builds", json={"repo": http_git.url(f"{unique}/allowed/repo"), "ref": "main"}
        )
        assert first.status_code == 202, first.text
        for spelling in (
            "allowed/./repo",
            "allowed/%72epo",
            "allowed//repo.git/",
            "allowed/%2E/repo",
        ):
            again = client.post(
                "/api/v1/builds", json={"repo": http_git.url(f"{unique}/{spelling}"), "ref": "main"}
            )
            assert again.status_code in (200, 202), again.text
            assert again.json()["image"] == first.json()["image"], spelling
            assert again.json()["repo"] == http_git.url(f"{unique}/allowed/repo")
        assert records(server) == 1
