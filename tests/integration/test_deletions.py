"""A deleted branch or tag does not build (issue 20), end to end: a real ``binderhub-service
serve`` whose only build slot is taken, a real git server whose branch and tag are
deleted (and their commits pruned, as a forge does), the recorded GitHub deliveries
(github-push-new-branch.json for the pushes, github-push-tag-deleted.json for the
tag's deletion), and the GitHub stand-in's recorded commit statuses: the queued builds
are superseded by the deletions, never run, and no failure status is posted for them.
Before the fix, they ran once the slot freed, failed on git's "reset --hard" of a
commit the server no longer had, and posted a failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from testkit.components import GitServer, ServiceProcess, dockerfile, git, wait_until

from .forge_standins import GitHubStandIn
from .test_forge_api import TOKEN, forge_repo
from .test_http_api import wait_for_state
from .test_webhooks import WEBHOOKS, ZEROS, for_github, send_github

StartServer = Callable[..., ServiceProcess]
PUBLIC_URL = "https://hub.example.org/binder/"


def statuses_of(github: GitHubStandIn, sha: str) -> list[dict[str, Any]]:
    return [r.json() for r in github.requests_to("POST", f"/statuses/{sha}")]


def test_deleting_a_branch_and_a_tag_supersedes_their_queued_builds(
    git_server: GitServer, github: GitHubStandIn, start_server: StartServer, unique: str
) -> None:
    project = f"org-{unique}/deleted"
    repo = git_server.create_repo(project, {"Dockerfile": dockerfile()})
    feature = repo.commit({"feature": "1"}, branch="feature/gone")
    tagged = repo.commit({"release": "1"}, branch="release-tmp")
    repo.tag("v1")
    git("checkout", "-q", "main", cwd=repo.path)
    git("branch", "-q", "-D", "release-tmp", cwd=repo.path)  # v1 alone holds its commit
    github.repos[project] = forge_repo(repo)
    busy = git_server.create_repo(
        f"busy-{unique}", {"Dockerfile": dockerfile(f"RUN echo {unique} && sleep 300")}
    )
    server = start_server(
        repos=[{"url": repo.url, "branches": ["main", "feature/*"], "tags": ["v*"]}],
        webhooks=WEBHOOKS,
        public_url=PUBLIC_URL,
        forges={
            "hosts": [
                {
                    "kind": "github",
                    "url": "http://127.0.0.1",
                    "api_url": github.api_url,
                    "token": TOKEN,
                }
            ]
        },
        limits={"max_concurrent_builds": 1},
    )
    with server.client() as client:
        blocker = client.post("/api/v1/builds", json={"repo": busy.url}).json()["id"]
        wait_for_state(client, blocker, {"running"})

        pushed = {}
        for ref, sha in (("refs/heads/feature/gone", feature), ("refs/tags/v1", tagged)):
            response = send_github(
                client, for_github("github-push-new-branch.json", repo, sha, ref)
            )
            assert response.status_code == 202, response.text
            (build,) = response.json()["builds"]
            assert build["outcome"] == "created"
            pushed[ref] = build["id"]

        # the forge deletes the refs; their commits go with them
        git("update-ref", "-d", "refs/heads/feature/gone", cwd=repo.path)
        git("tag", "-d", "v1", cwd=repo.path)
        git("reflog", "expire", "--expire=now", "--all", cwd=repo.path)
        git("gc", "-q", "--prune=now", cwd=repo.path)

        tag_deleted = for_github("github-push-tag-deleted.json", repo, None, "refs/tags/v1")
        branch_deleted = for_github(
            "github-push-branch-update.json", repo, ZEROS, "refs/heads/feature/gone"
        ) | {"deleted": True, "head_commit": None}
        for ref, data, delivery in (
            ("refs/tags/v1", tag_deleted, f"tag-{unique}"),
            ("refs/heads/feature/gone", branch_deleted, f"branch-{unique}"),
        ):
            response = send_github(client, data, delivery=delivery)
            assert response.status_code == 202, response.text
            assert response.json() == {
                "outcome": "accepted",
                "reason": None,
                "repo": repo.url,
                "builds": [],
                "deleted": [{"ref": ref, "superseded": [pushed[ref]], "kept": []}],
                "ignored": [],
                "duplicate": False,
            }
            record = client.get(f"/api/v1/builds/{pushed[ref]}").json()
            assert record["state"] == "superseded"
            assert record["error"] == (
                f"superseded by the deletion of {ref} in github delivery {delivery}"
            )

        # the slot frees: nothing of the deleted refs runs
        assert client.delete(f"/api/v1/builds/{blocker}").status_code == 200
        for build_id in pushed.values():
            record = client.get(f"/api/v1/builds/{build_id}").json()
            assert (record["state"], record["started_at"]) == ("superseded", None)
        listed = client.get("/api/v1/builds", params={"state": "running"}).json()
        assert listed["builds"] == []

    # the forge was told "pending", then "cancelled" with the reason, never "failure"
    for ref, sha in (("refs/heads/feature/gone", feature), ("refs/tags/v1", tagged)):
        wait_until(lambda sha=sha: any(s["state"] == "error" for s in statuses_of(github, sha)))
        states = [s["state"] for s in statuses_of(github, sha)]
        assert "failure" not in states, states
        assert states[-1] == "error"  # GitHub has no "cancelled"
        assert statuses_of(github, sha)[-1]["description"] == (
            f"superseded by the deletion of {ref} in github delivery "
            f"{'tag' if 'tags' in ref else 'branch'}-{unique}"
        )
    assert "reset --hard" not in server.log()
