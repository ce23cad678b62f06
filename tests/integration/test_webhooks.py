"""Push webhooks into a real ``binderhub-service serve``: the recorded GitHub and GitLab
deliveries (a rewritten copy: repo URLs -> a repo on the local git daemon, SHAs -> real
commits there, signed over the exact bytes sent), end to end to an image in the local
registry."""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from testkit.components import (
    GitRepo,
    GitServer,
    Registry,
    ServiceProcess,
    dockerfile,
    git,
    in_registry,
)
from tests.conftest import WEBHOOK_FIXTURES
from webhook.deliveries import github_signature

from .test_http_api import wait_for_state

StartServer = Callable[..., ServiceProcess]

FIXTURES = WEBHOOK_FIXTURES
GITHUB_SECRET = "github secret for tests"
GITLAB_TOKEN = "gitlab token for tests"
WEBHOOKS = {"github_secret": GITHUB_SECRET, "gitlab_token": GITLAB_TOKEN}
ZEROS = "0" * 40


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def for_github(name: str, repo: GitRepo, sha: str | None, ref: str | None = None) -> dict[str, Any]:
    """A copy of a recorded GitHub delivery about ``repo`` (default branch main)."""
    data = copy.deepcopy(fixture(name))
    repository = data["repository"]
    for field in ("clone_url", "html_url", "ssh_url", "git_url", "svn_url", "url"):
        repository[field] = repo.url
    repository["default_branch"] = "main"
    data["ref"] = ref or data["ref"].replace("/master", "/main")
    if sha is not None:
        data["after"] = sha
        if data.get("head_commit"):
            data["head_commit"]["id"] = sha
    return data


def for_gitlab(
    name: str, repo: GitRepo, sha: str | None, ref: str | None = None, after: str | None = None
) -> dict[str, Any]:
    """A copy of a recorded GitLab delivery about ``repo`` (default branch main)."""
    data = copy.deepcopy(fixture(name))
    for section in ("project", "repository"):
        for field in ("git_http_url", "git_ssh_url", "web_url", "homepage", "url", "http_url"):
            if field in data[section]:
                data[section][field] = repo.url
    data["project"]["default_branch"] = "main"
    data["ref"] = ref or data["ref"].replace("/master", "/main")
    data["checkout_sha"] = sha
    data["after"] = after or sha or ZEROS
    return data


def github_headers(
    body: bytes, event: str = "push", delivery: str | None = None, secret: str = GITHUB_SECRET
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(secret.encode(), body),
    }


def gitlab_headers(event: str = "Push Hook", delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": GITLAB_TOKEN,
        "Idempotency-Key": delivery or str(uuid.uuid4()),
    }


def send_github(
    client: httpx.Client, data: dict[str, Any], event: str = "push", delivery: str | None = None
) -> httpx.Response:
    body = json.dumps(data).encode()
    return client.post("/hooks/github", content=body, headers=github_headers(body, event, delivery))


def send_gitlab(
    client: httpx.Client,
    data: dict[str, Any],
    event: str = "Push Hook",
    delivery: str | None = None,
) -> httpx.Response:
    body = json.dumps(data).encode()
    return client.post("/hooks/gitlab", content=body, headers=gitlab_headers(event, delivery))


def state_db(server: ServiceProcess) -> sqlite3.Connection:
    path = re.search(r"state_path: (.*)\n", server.config.read_text())
    assert path is not None
    return sqlite3.connect(path.group(1))


def stored(server: ServiceProcess) -> tuple[int, int]:
    """(build records, remembered deliveries) in the server's state file."""
    db = state_db(server)
    try:
        builds = db.execute("SELECT COUNT(*) FROM builds").fetchone()[0]
        deliveries = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        return int(builds), int(deliveries)
    finally:
        db.close()


def delivery_count(client: httpx.Client, provider: str, outcome: str) -> float:
    text = client.get("/metrics").text
    labels = f'outcome="{outcome}",provider="{provider}"'
    pattern = r"^binderhub_service_webhook_deliveries_total\{" + labels + r"\} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def make_repo(git_server: GitServer, name: str) -> tuple[GitRepo, str]:
    repo = git_server.create_repo(name, {"Dockerfile": dockerfile()})
    return repo, git("rev-parse", "HEAD", cwd=repo.path)


# -- end to end -----------------------------------------------------------------


def test_github_push_builds_the_pushed_commit_into_the_registry(
    git_server: GitServer, registry: Registry, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"gh-{unique}")
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    with server.client() as client:
        started = time.monotonic()
        response = send_github(client, for_github("github-push-branch-update.json", repo, sha))
        assert time.monotonic() - started < 2
        assert response.status_code == 202, response.text
        answer = response.json()
        build = answer["builds"][0]
        assert answer == {
            "outcome": "accepted",
            "reason": None,
            "repo": repo.url,
            "builds": [
                {
                    "id": build["id"],
                    "ref": "refs/heads/main",
                    "sha": sha,
                    "image": build["image"],
                    "outcome": "created",
                }
            ],
            "deleted": [],
            "ignored": [],
            "duplicate": False,
        }
        built = wait_for_state(client, build["id"], {"built", "failed"})
        assert built["state"] == "built", built["error"]
        assert (built["trigger"], built["ref"], built["sha"]) == ("github", "main", sha)
        assert in_registry(registry.url, build["image"])
        assert delivery_count(client, "github", "accepted") == 1


def test_gitlab_push_builds_checkout_sha_into_the_registry(
    git_server: GitServer, registry: Registry, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"gl-{unique}")
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    with server.client() as client:
        response = send_gitlab(client, for_gitlab("gitlab-push-docs.json", repo, sha))
        assert response.status_code == 202, response.text
        build = response.json()["builds"][0]
        assert (build["ref"], build["sha"], build["outcome"]) == ("refs/heads/main", sha, "created")
        built = wait_for_state(client, build["id"], {"built", "failed"})
        assert built["state"] == "built", built["error"]
        assert built["trigger"] == "gitlab"
        assert in_registry(registry.url, build["image"])

        # the same commit by an old-style delivery and a system hook: built already
        for name, event in [
            ("gitlab-push-goplayground.json", "Push Hook"),
            ("gitlab-system-hook-push.json", "System Hook"),
        ]:
            again = send_gitlab(client, for_gitlab(name, repo, sha), event)
            assert again.status_code == 202, again.text
            assert again.json()["builds"] == [
                {
                    "id": None,
                    "ref": "refs/heads/main",
                    "sha": sha,
                    "image": build["image"],
                    "outcome": "cached",
                }
            ]
    assert stored(server)[0] == 1


def test_gitlab_annotated_tag_builds_the_commit_not_the_tag_object(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"gltag-{unique}")
    repo.tag("v1.0.0", annotated=True)
    tag_object = git("rev-parse", "v1.0.0", cwd=repo.path)
    assert tag_object != sha
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    data = for_gitlab("gitlab-tag-push-docs.json", repo, sha, after=tag_object)
    with server.client() as client:
        response = send_gitlab(client, data, "Tag Push Hook")
        assert response.status_code == 202, response.text
        build = response.json()["builds"][0]
        assert (build["ref"], build["sha"]) == ("refs/tags/v1.0.0", sha)
        record = client.get(f"/api/v1/builds/{build['id']}").json()
        assert (record["ref"], record["ref_kind"], record["sha"]) == ("v1.0.0", "tag", sha)


def test_a_push_refreshes_the_ref_cache_for_api_requests(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    """The push names the commit; the API's next "main" is answered from it, not git."""
    repo, first = make_repo(git_server, f"cache-{unique}")
    repo.commit({"later": "x"})  # the repository's main is ahead of what the push says
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS, ref_cache_seconds=600)
    with server.client() as client:
        pushed = send_github(client, for_github("github-push-new-branch.json", repo, first))
        assert pushed.status_code == 202, pushed.text
        asked = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert asked.status_code == 202, asked.text
        assert (asked.json()["outcome"], asked.json()["sha"]) == ("joined", first)
        assert asked.json()["id"] == pushed.json()["builds"][0]["id"]


# -- what builds, what is ignored -----------------------------------------------


def test_a_commit_pushed_as_branch_and_tag_builds_once(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"twice-{unique}")
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    with server.client() as client:
        branch = send_github(client, for_github("github-push-new-branch.json", repo, sha))
        tag = send_github(
            client, for_github("github-push-new-branch.json", repo, sha, "refs/tags/v1")
        )
        assert branch.status_code == tag.status_code == 202
        first, second = branch.json()["builds"][0], tag.json()["builds"][0]
        assert (first["outcome"], second["outcome"]) == ("created", "joined")
        assert first["id"] == second["id"]
    assert stored(server) == (1, 2)


def test_deletions_pings_and_other_events_build_nothing(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"ignored-{unique}")
    server = start_server(repos=[{"url": repo.url, "tags": ["v*"]}], webhooks=WEBHOOKS)
    github_cases: list[tuple[dict[str, Any], str, str, list[dict[str, str]]]] = [
        (
            # a tag that does not build (tags: v*), deleted: ignored as "deleted"
            for_github("github-push-tag-deleted.json", repo, None, "refs/tags/old"),
            "push",
            "no ref to build",
            [{"ref": "refs/tags/old", "reason": "deleted"}],
        ),
        (
            for_github("github-push-new-branch.json", repo, sha, "refs/heads/feature"),
            "push",
            "no ref to build",
            [
                {
                    "ref": "refs/heads/feature",
                    "reason": "not the default branch (main) and branches is not set",
                }
            ],
        ),
        (
            for_github("github-push-new-branch.json", repo, sha, "refs/tags/nightly"),
            "push",
            "no ref to build",
            [{"ref": "refs/tags/nightly", "reason": "tag does not match the repo's tags"}],
        ),
        (fixture("github-ping.json"), "ping", "ping: the hook works; push events build", []),
        (
            for_github("github-create-tag.json", repo, None),
            "create",
            "'create' events are not handled; only push events build",
            [],
        ),
        (
            fixture("github-ping.json"),
            "issues",
            "'issues' events are not handled; only push events build",
            [],
        ),
    ]
    with server.client() as client:
        for data, event, reason, ignored in github_cases:
            response = send_github(client, data, event)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert (answer["outcome"], answer["reason"]) == ("ignored", reason)
            assert answer["builds"] == []
            assert answer["ignored"] == ignored
            assert answer["deleted"] == []
        # deletions of refs that build, with nothing queued: listed, nothing superseded
        for response in (
            send_github(
                client, for_github("github-push-tag-deleted.json", repo, None, "refs/tags/v1")
            ),
            send_github(
                client,
                for_github("github-push-branch-update.json", repo, ZEROS) | {"deleted": True},
            ),
            send_gitlab(client, for_gitlab("gitlab-push-docs.json", repo, None)),
        ):
            assert response.status_code == 200, response.text
            answer = response.json()
            assert (answer["outcome"], answer["reason"]) == ("ignored", "no ref to build")
            assert (answer["builds"], answer["ignored"]) == ([], [])
            (deletion,) = answer["deleted"]
            assert deletion["superseded"] == deletion["kept"] == []
        merge = send_gitlab(client, fixture("gitlab-push-docs.json"), "Merge Request Hook")
        assert merge.status_code == 200
        assert merge.json()["outcome"] == "ignored"
        assert delivery_count(client, "github", "ignored") == len(github_cases) + 2
        assert delivery_count(client, "gitlab", "ignored") == 2
    assert stored(server) == (0, len(github_cases) + 4)


def test_pushes_of_repos_not_configured_are_ignored(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo, _ = make_repo(git_server, f"known-{unique}")
    other, other_sha = make_repo(git_server, f"unknown-{unique}")
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    with server.client() as client:
        github = send_github(client, for_github("github-push-branch-update.json", other, other_sha))
        original = send_github(client, fixture("github-push-branch-update.json"))
        gitlab = send_gitlab(client, for_gitlab("gitlab-push-docs.json", other, other_sha))
        for response in (github, original, gitlab):
            assert response.status_code == 200, response.text
            assert response.json() | {"duplicate": False} == {
                "outcome": "ignored",
                "reason": "repo not configured",
                "repo": None,
                "builds": [],
                "deleted": [],
                "ignored": [],
                "duplicate": False,
            }
    assert stored(server) == (0, 3)


def test_gitea_deliveries_are_recognised_as_gitea(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"gitea-{unique}")
    server = start_server(repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    body = json.dumps(for_github("github-push-branch-update.json", repo, sha)).encode()
    signature = github_signature(GITHUB_SECRET.encode(), body)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "shared-id",
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": "shared-id",
        "X-Gitea-Signature": signature.removeprefix("sha256="),
        "X-Hub-Signature-256": signature,
    }
    with server.client() as client:
        response = client.post("/hooks/github", content=body, headers=headers)
        assert response.status_code == 202, response.text
        build = client.get(f"/api/v1/builds/{response.json()['builds'][0]['id']}").json()
        assert build["trigger"] == "gitea"
        # a GitHub delivery with the same id is another delivery
        github = send_github(client, json.loads(body), delivery="shared-id")
        assert github.json()["duplicate"] is False
        assert delivery_count(client, "gitea", "accepted") == 1
        assert delivery_count(client, "github", "accepted") == 1


# -- redelivery -----------------------------------------------------------------


def test_redeliveries_answer_the_recorded_decision_even_after_a_restart(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    repo, sha = make_repo(git_server, f"again-{unique}")
    settings = {"repos": [{"url": repo.url}], "webhooks": WEBHOOKS}
    server = start_server(**settings)
    github_body = for_github("github-push-branch-update.json", repo, sha)
    gitlab_body = for_gitlab("gitlab-tag-push-docs.json", repo, sha, ref="refs/tags/v1")
    with server.client() as client:
        first = send_github(client, github_body, delivery="gh-1")
        assert first.status_code == 202
        again = send_github(client, github_body, delivery="gh-1")
        assert again.status_code == 200
        assert again.json() == first.json() | {"duplicate": True}
        tag = send_gitlab(client, gitlab_body, "Tag Push Hook", delivery="gl-1")
        assert tag.status_code == 202
        assert tag.json()["builds"][0]["outcome"] == "joined"
        assert delivery_count(client, "github", "duplicate") == 1
    assert stored(server) == (1, 2)

    server.stop()
    restarted = start_server(**settings)
    with restarted.client() as client:
        for response in (
            send_github(client, github_body, delivery="gh-1"),
            send_gitlab(client, gitlab_body, "Tag Push Hook", delivery="gl-1"),
        ):
            assert response.status_code == 200
            assert response.json()["duplicate"] is True
        assert send_gitlab(client, gitlab_body, "Tag Push Hook", delivery="gl-1").json() == (
            tag.json() | {"duplicate": True}
        )
    assert stored(restarted) == (1, 2)


def test_only_as_many_deliveries_as_configured_are_remembered(
    git_server: GitServer, start_server: StartServer, unique: str
) -> None:
    server = start_server(webhooks={**WEBHOOKS, "deliveries_remembered": 3})
    with server.client() as client:
        for n in range(5):
            assert (
                send_github(client, fixture("github-ping.json"), "ping", f"p{n}").json()[
                    "duplicate"
                ]
                is False
            )
        assert send_github(client, fixture("github-ping.json"), "ping", "p4").json()["duplicate"]
        assert not send_github(client, fixture("github-ping.json"), "ping", "p0").json()[
            "duplicate"
        ]
    assert stored(server)[1] == 3


# -- refused --------------------------------------------------------------------


def test_hooks_without_a_secret_are_refused(start_server: StartServer) -> None:
    server = start_server()
    with server.client(None) as client:
        body = json.dumps(fixture("github-ping.json")).encode()
        github = client.post("/hooks/github", content=body, headers=github_headers(body, "ping"))
        assert github.status_code == 403
        assert github.json() == {"error": "GitHub webhooks are not configured"}
        gitlab = send_gitlab(client, fixture("gitlab-push-docs.json"))
        assert gitlab.status_code == 403
        assert gitlab.json() == {"error": "GitLab webhooks are not configured"}
        assert delivery_count(client, "github", "rejected") == 1
    assert stored(server) == (0, 0)


def test_unknown_hook_paths_name_the_receivers_that_exist(start_server: StartServer) -> None:
    server = start_server(webhooks=WEBHOOKS)
    receivers = "this service receives /hooks/github (GitHub, Gitea) and /hooks/gitlab (GitLab)"
    with server.client(None) as client:
        for forge in ("bitbucket", "gitea", "GitHub", "a/b"):
            response = client.post(f"/hooks/{forge}", json={"push": {}})
            assert response.status_code == 404, response.text
            assert response.json() == {"error": f"no webhook receiver for {forge!r}; {receivers}"}
        # the receivers take POST only; other methods get 405 naming it
        for path in ("/hooks/github", "/hooks/gitlab", "/hooks/bitbucket"):
            response = client.get(path)
            assert response.status_code == 405, response.text
            assert response.headers["allow"] == "POST"
            assert response.json() == {"error": "Method Not Allowed"}
        assert delivery_count(client, "github", "rejected") == 0
    assert stored(server) == (0, 0)


def _github_case(
    body: bytes | None = None,
    *,
    data: Callable[[GitRepo, str], dict[str, Any]] | None = None,
    sign: bytes | None = None,
    headers: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    return {"provider": "github", "body": body, "data": data, "sign": sign, "headers": headers}


def _gitlab_case(
    body: bytes | None = None,
    *,
    data: Callable[[GitRepo, str], dict[str, Any]] | None = None,
    headers: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    return {"provider": "gitlab", "body": body, "data": data, "sign": None, "headers": headers}


def _push(**changes: Any) -> Callable[[GitRepo, str], dict[str, Any]]:
    def make(repo: GitRepo, sha: str) -> dict[str, Any]:
        data = for_github("github-push-branch-update.json", repo, sha)
        for key, value in changes.items():
            if value is None:
                del data[key]
            else:
                data[key] = value
        return data

    return make


def _gitlab_push(**changes: Any) -> Callable[[GitRepo, str], dict[str, Any]]:
    def make(repo: GitRepo, sha: str) -> dict[str, Any]:
        data = for_gitlab("gitlab-push-docs.json", repo, sha)
        for key, value in changes.items():
            if value is None:
                del data[key]
            else:
                data[key] = value
        return data

    return make


MAX_BODY = 64 * 1024
BAD_DELIVERIES: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "no signature",
        _github_case(data=_push(), headers={"X-Hub-Signature-256": None}),
        401,
        "missing X-Hub-Signature-256",
    ),
    (
        "invalid signature",
        _github_case(data=_push(), headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        401,
        "does not match the body",
    ),
    (
        "signature of another secret",
        _github_case(data=_push(), headers={"X-Hub-Signature-256": "SIGN:another secret"}),
        401,
        "does not match the body",
    ),
    (
        "signature of a different body",
        _github_case(data=_push(), sign=b'{"ref": "refs/heads/main"}'),
        401,
        "does not match the body",
    ),
    (
        "form-encoded",
        _github_case(
            b"payload=%7B%22ref%22%3A%22x%22%7D",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
        "configure the webhook with content type application/json",
    ),
    ("no content type", _github_case(b"{}", headers={"Content-Type": None}), 415, "(none)"),
    ("truncated JSON", _github_case(b'{"ref": "refs/he'), 400, "body is not valid JSON"),
    ("not JSON", _github_case(b"ref=main"), 400, "body is not valid JSON"),
    ("JSON array", _github_case(b"[]"), 400, "body must be a JSON object"),
    ("non-UTF-8", _github_case(b'{"ref": "\xff\xfe"}'), 400, "body is not valid UTF-8"),
    ("oversize", _github_case(b'{"a": "' + b"x" * MAX_BODY + b'"}'), 413, "larger than 65536"),
    ("no event", _github_case(b"{}", headers={"X-GitHub-Event": None}), 400, "X-GitHub-Event"),
    ("push without ref", _github_case(data=_push(ref=None)), 400, "missing field: ref"),
    ("push without after", _github_case(data=_push(after=None)), 400, "missing field: after"),
    (
        "push without repository",
        _github_case(data=_push(repository=None)),
        400,
        "missing field: repository",
    ),
    (
        "10k ref",
        _github_case(data=_push(ref="refs/heads/" + "a" * 10_000)),
        400,
        "ref is longer than 255",
    ),
    (
        "10k repo URL",
        _github_case(data=_push(repository={"clone_url": "git://h/" + "a" * 10_000})),
        400,
        "repo is longer than 2048",
    ),
    ("10k SHA", _github_case(data=_push(after="a" * 10_000)), 400, "40-character"),
    (
        "ref with a space",
        _github_case(data=_push(ref="refs/heads/a b")),
        400,
        "must not contain spaces",
    ),
    ("ref with ..", _github_case(data=_push(ref="refs/heads/a..b")), 400, "'..'"),
    (
        "ref like an option",
        _github_case(data=_push(ref="--upload-pack=touch /tmp/x")),
        400,
        "must not start with '-'",
    ),
    (
        "branch like an option",
        _github_case(data=_push(ref="refs/heads/-x")),
        400,
        "must not start with '-'",
    ),
    (
        "10k delivery id",
        _github_case(data=_push(), headers={"X-GitHub-Delivery": "d" * 10_000}),
        400,
        "X-GitHub-Delivery header must be at most 200",
    ),
    (
        "gitlab without token",
        _gitlab_case(data=_gitlab_push(), headers={"X-Gitlab-Token": None}),
        401,
        "missing X-Gitlab-Token",
    ),
    (
        "gitlab wrong token",
        _gitlab_case(data=_gitlab_push(), headers={"X-Gitlab-Token": "guess"}),
        401,
        "X-Gitlab-Token does not match",
    ),
    (
        "gitlab form-encoded",
        _gitlab_case(b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        "content type application/json",
    ),
    (
        "gitlab without checkout_sha",
        _gitlab_case(data=_gitlab_push(checkout_sha=None)),
        400,
        "missing field: checkout_sha",
    ),
    (
        "gitlab ref with ..",
        _gitlab_case(data=_gitlab_push(ref="refs/tags/a..b")),
        400,
        "'..'",
    ),
    ("gitlab oversize", _gitlab_case(b"[" + b" " * MAX_BODY + b"]"), 413, "larger than"),
]


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [case[1:] for case in BAD_DELIVERIES],
    ids=[case[0] for case in BAD_DELIVERIES],
)
def test_bad_deliveries_get_a_clear_4xx_and_change_nothing(
    git_server: GitServer,
    start_server: StartServer,
    unique: str,
    case: dict[str, Any],
    status: int,
    message: str,
) -> None:
    repo, sha = make_repo(git_server, f"bad-{unique}")
    server = start_server(
        repos=[{"url": repo.url}], webhooks={**WEBHOOKS, "max_body_bytes": MAX_BODY}
    )
    body: bytes = (
        case["body"] if case["data"] is None else json.dumps(case["data"](repo, sha)).encode()
    )
    provider = case["provider"]
    headers: dict[str, str | None]
    if provider == "github":
        headers = dict(github_headers(case["sign"] or body, delivery="bad-1"))
    else:
        headers = dict(gitlab_headers(delivery="bad-1"))
    for name, value in (case["headers"] or {}).items():
        if value is not None and value.startswith("SIGN:"):
            value = github_signature(value.removeprefix("SIGN:").encode(), body)
        headers[name] = value
    sent = {name: value for name, value in headers.items() if value is not None}
    with server.client(None) as client:
        response = client.post(f"/hooks/{provider}", content=body, headers=sent)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert message in response.json()["error"]
        assert delivery_count(client, provider, "rejected") == 1
    assert stored(server) == (0, 0)
    assert GITHUB_SECRET not in server.log()
    assert GITLAB_TOKEN not in server.log()
