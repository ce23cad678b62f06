"""Webhook deliveries as forges send them: verification and parsing, pinned against the
recorded deliveries in the shared fixtures (every file is used), and the ref selection
that pushes and the reconciler share."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from starlette.datastructures import Headers

from jobs.coordinator.push import (
    Decision,
    Deletion,
    Ignored,
    Push,
    PushAnswer,
    RefChange,
    Selected,
    Selection,
    deletion_error,
    match_repo,
    resolved_ref,
    select_refs,
    short_name,
    skip_reason,
)
from jobs.coordinator.reconcile import parse_ls_remote
from jobs.model import Build, BuildOutcome, BuildState
from jobs.settings import RepoSettings
from jobs.sources.specs import ResolvedRef
from tests.conftest import WEBHOOK_FIXTURES
from webhook.deliveries import (
    Delivery,
    github_delivery,
    github_provider,
    github_signature,
    gitlab_delivery,
    parse_github,
    parse_gitlab,
    verify_github_signature,
    verify_gitlab_token,
)
from webhook.errors import BadRequest
from webhook.hooks import push_status

FIXTURES = WEBHOOK_FIXTURES
SECRET = b"It's a Secret to Everybody"
ZEROS = "0" * 40


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def test_every_fixture_is_covered() -> None:
    covered = {name for name, _, _ in GITHUB_CASES} | {name for name, _, _ in GITLAB_CASES}
    assert covered == {path.name for path in FIXTURES.glob("*.json")}


# -- signatures and tokens ------------------------------------------------------


def test_github_published_test_vector() -> None:
    assert github_signature(SECRET, b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_a_correct_signature_passes() -> None:
    body = (FIXTURES / "github-ping.json").read_bytes()
    headers = Headers({"X-Hub-Signature-256": github_signature(SECRET, body)})
    verify_github_signature(SECRET, body, headers, "github")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": ""}, "missing X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "does not match"),
        ({"X-Hub-Signature-256": "sha1=abc"}, "does not match"),
        ({"X-Hub-Signature-256": "sha256=é"}, "does not match"),
        ({"X-Hub-Signature-256": github_signature(b"other secret", b"Hello, World!")}, "match"),
        ({"X-Hub-Signature-256": github_signature(SECRET, b"Hello, World")}, "does not match"),
    ],
    ids=["none", "empty", "zeros", "sha1", "non-ascii", "other secret", "other body"],
)
def test_a_missing_or_wrong_signature_is_401(headers: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        verify_github_signature(SECRET, b"Hello, World!", Headers(headers), "github")
    assert info.value.status_code == 401
    assert "757107ea" not in str(info.value)  # never echo the expected signature


def test_gitea_is_recognised_and_may_sign_with_its_own_header() -> None:
    headers = Headers(
        {
            "X-GitHub-Event": "push",
            "X-Gitea-Event": "push",
            "X-Gitea-Delivery": "d-1",
            "X-Gitea-Signature": github_signature(SECRET, b"{}").removeprefix("sha256="),
        }
    )
    assert github_provider(headers) == "gitea"
    verify_github_signature(SECRET, b"{}", headers, "gitea")
    assert github_delivery(headers, "gitea") == Delivery("gitea", "push", "d-1")
    with pytest.raises(BadRequest, match="missing X-Hub-Signature-256"):
        verify_github_signature(SECRET, b"{}", headers, "github")


def test_github_headers() -> None:
    headers = Headers({"X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78"})
    assert github_provider(headers) == "github"
    assert github_delivery(headers, "github") == Delivery("github", "push", "72d3162e-cc78")
    assert github_delivery(Headers({"X-GitHub-Event": "ping"}), "github").id is None
    with pytest.raises(BadRequest, match="missing X-GitHub-Event header"):
        github_delivery(Headers({}), "github")
    with pytest.raises(BadRequest, match="at most 200 printable"):
        github_delivery(Headers({"X-GitHub-Event": "p" * 201}), "github")


def test_gitlab_token_and_headers() -> None:
    verify_gitlab_token(b"token", "token")
    for given, message in [(None, "missing X-Gitlab-Token"), ("", "missing"), ("tok", "match")]:
        with pytest.raises(BadRequest, match=message) as info:
            verify_gitlab_token(b"token", given)
        assert info.value.status_code == 401
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "uuid-1"}
    assert gitlab_delivery(Headers(headers)) == Delivery("gitlab", "Push Hook", "uuid-1")
    retried = Headers({**headers, "Idempotency-Key": "key-1"})
    assert gitlab_delivery(retried).id == "key-1"


# -- the recorded deliveries ----------------------------------------------------

HELLO_WORLD = (
    "https://github.com/codertocat/hello-world",
    "ssh://git@github.com/codertocat/hello-world",
    "git://github.com/codertocat/hello-world",
)
DIASPORA = ("http://example.com/mike/diaspora", "ssh://git@example.com/mike/diaspora")
GITLAB_MASTER = RefChange("refs/heads/master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")

GITHUB_CASES: list[tuple[str, str, Push | Ignored]] = [
    (
        "github-push-branch-update.json",
        "push",
        Push(
            (
                "https://github.com/binkkatal/sample_app",
                "ssh://git@github.com/binkkatal/sample_app",
                "git://github.com/binkkatal/sample_app",
            ),
            "master",
            (RefChange("refs/heads/master", "fd489864e7642b48eaad6e3f155c10e46810ec72"),),
        ),
    ),
    (
        "github-push-new-branch.json",
        "push",
        Push(
            HELLO_WORLD,
            "master",
            (RefChange("refs/heads/master", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"),),
        ),
    ),
    (
        "github-push-tag-deleted.json",
        "push",
        Push(HELLO_WORLD, "master", (RefChange("refs/tags/simple-tag", None),)),
    ),
    ("github-ping.json", "ping", Ignored("ping: the hook works; push events build")),
    (
        "github-create-tag.json",
        "create",
        Ignored("'create' events are not handled; only push events build"),
    ),
]

GITLAB_CASES: list[tuple[str, str, Push | Ignored]] = [
    ("gitlab-push-docs.json", "Push Hook", Push(DIASPORA, "master", (GITLAB_MASTER,))),
    ("gitlab-push-goplayground.json", "Push Hook", Push(DIASPORA, "master", (GITLAB_MASTER,))),
    ("gitlab-system-hook-push.json", "System Hook", Push(DIASPORA, "master", (GITLAB_MASTER,))),
    (
        "gitlab-tag-push-docs.json",
        "Tag Push Hook",
        Push(
            ("http://example.com/jsmith/example", "ssh://git@example.com/jsmith/example"),
            "master",
            (RefChange("refs/tags/v1.0.0", "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),),
        ),
    ),
]


@pytest.mark.parametrize(("name", "event", "expected"), GITHUB_CASES, ids=lambda v: str(v)[:40])
def test_github_deliveries(name: str, event: str, expected: Push | Ignored) -> None:
    assert parse_github(event, fixture(name)) == expected


@pytest.mark.parametrize(("name", "event", "expected"), GITLAB_CASES, ids=lambda v: str(v)[:40])
def test_gitlab_deliveries(name: str, event: str, expected: Push | Ignored) -> None:
    assert parse_gitlab(event, fixture(name)) == expected


@pytest.mark.parametrize("name", [case[0] for case in GITHUB_CASES])
def test_other_github_events_are_ignored_not_refused(name: str) -> None:
    assert parse_github("issues", fixture(name)) == Ignored(
        "'issues' events are not handled; only push events build"
    )


@pytest.mark.parametrize("name", [case[0] for case in GITLAB_CASES])
def test_other_gitlab_events_are_ignored_not_refused(name: str) -> None:
    ignored = parse_gitlab("Merge Request Hook", fixture(name))
    assert isinstance(ignored, Ignored)
    assert ignored.reason.startswith("'Merge Request Hook' events are not handled")
    system = fixture(name) | {"event_name": "project_create"}
    system.pop("object_kind", None)
    assert parse_gitlab("System Hook", system) == Ignored(
        "System Hook of kind 'project_create' is not handled; only push and tag_push build"
    )


def test_github_annotated_tag_builds_the_commit_not_the_tag_object() -> None:
    data = fixture("github-push-new-branch.json") | {
        "ref": "refs/tags/v1",
        "after": "a" * 40,  # the tag object
    }
    push = parse_github("push", data)
    assert isinstance(push, Push)
    assert push.changes == (RefChange("refs/tags/v1", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"),)


def test_github_push_without_head_commit_builds_after() -> None:
    data = fixture("github-push-branch-update.json") | {"head_commit": None}
    push = parse_github("push", data)
    assert isinstance(push, Push)
    assert push.changes[0].sha == "fd489864e7642b48eaad6e3f155c10e46810ec72"


def test_gitlab_builds_checkout_sha_never_after() -> None:
    data = fixture("gitlab-tag-push-docs.json") | {"after": "b" * 40}
    push = parse_gitlab("Tag Push Hook", data)
    assert isinstance(push, Push)
    assert push.changes[0].sha == "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"


def test_gitlab_deletion_builds_nothing() -> None:
    data = fixture("gitlab-push-docs.json") | {"after": ZEROS, "checkout_sha": None}
    push = parse_gitlab("Push Hook", data)
    assert isinstance(push, Push)
    assert push.changes == (RefChange("refs/heads/master", None),)


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


def _with(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


GH = "github-push-branch-update.json"
GL = "gitlab-push-docs.json"
LONG = "x" * 10_000
BAD_PUSHES: list[tuple[str, str, str, Any, str]] = [
    # (id, fixture, event, change to the payload, message)
    ("gh no ref", GH, "push", ("drop", "ref"), "missing field: ref"),
    ("gh no after", GH, "push", ("drop", "after"), "missing field: after"),
    ("gh no repository", GH, "push", ("drop", "repository"), "missing field: repository"),
    ("gh ref not a string", GH, "push", ("set", 5, "ref"), "field ref must be a string"),
    ("gh ref with a space", GH, "push", ("set", "refs/heads/a b", "ref"), "spaces"),
    ("gh ref with ..", GH, "push", ("set", "refs/heads/a..b", "ref"), "'..'"),
    ("gh ref like an option", GH, "push", ("set", "--upload-pack=x", "ref"), "start with '-'"),
    ("gh branch like an option", GH, "push", ("set", "refs/heads/-x", "ref"), "with '-'"),
    ("gh short ref", GH, "push", ("set", "main", "ref"), "full ref name"),
    ("gh 10k ref", GH, "push", ("set", "refs/heads/" + LONG, "ref"), "longer than 255"),
    ("gh 10k after", GH, "push", ("set", LONG, "after"), "40-character"),
    ("gh upper-case sha", GH, "push", ("set", "A" * 40, "after"), "40-character"),
    ("gh bad head commit", GH, "push", ("set", "x", "head_commit", "id"), "head_commit.id"),
    (
        "gh 10k clone_url",
        GH,
        "push",
        ("set", "https://github.com/" + LONG, "repository", "clone_url"),
        "field repository.clone_url: repo is longer than 2048",
    ),
    (
        "gh clone_url not a URL",
        GH,
        "push",
        ("set", "not a url", "repository", "clone_url"),
        "repository.clone_url",
    ),
    (
        "gh clone_url with an escaped '..'",
        GH,
        "push",
        ("set", "https://git.example.org/allowed/%2E%2E/private", "repository", "clone_url"),
        "field repository.clone_url: repo URL path must not contain '..' segments",
    ),
    ("gh no repo URL", GH, "push", ("set", {"name": "x"}, "repository"), "names no repository"),
    ("gh deleted not bool", GH, "push", ("set", "yes", "deleted"), "deleted must be a boolean"),
    ("gl no ref", GL, "Push Hook", ("drop", "ref"), "missing field: ref"),
    ("gl no after", GL, "Push Hook", ("drop", "after"), "missing field: after"),
    ("gl no checkout_sha", GL, "Push Hook", ("set", None, "checkout_sha"), "checkout_sha"),
    ("gl no kind", GL, "Push Hook", ("kind",), "missing field: object_kind"),
    ("gl no project", GL, "Push Hook", ("project",), "missing field: project"),
    ("gl ref with a space", GL, "Push Hook", ("set", "refs/tags/a b", "ref"), "spaces"),
    ("gl 10k ref", GL, "Push Hook", ("set", LONG, "ref"), "longer than 255"),
]


@pytest.mark.parametrize(
    ("name", "event", "change", "message"),
    [case[1:] for case in BAD_PUSHES],
    ids=[case[0] for case in BAD_PUSHES],
)
def test_malformed_pushes_are_400_naming_the_field(
    name: str, event: str, change: tuple[Any, ...], message: str
) -> None:
    data = fixture(name)
    if change[0] == "drop":
        data = _without(data, *change[1:])
    elif change[0] == "set":
        data = _with(data, change[1], *change[2:])
    elif change[0] == "kind":
        data = _without(_without(data, "object_kind"), "event_name")
    else:
        data = _without(_without(data, "project"), "repository")
    parse = parse_github if name.startswith("github") else parse_gitlab
    with pytest.raises(BadRequest) as info:
        parse(event, data)
    assert info.value.status_code == 400
    assert message in str(info.value)


# -- which refs build -----------------------------------------------------------

REPO = RepoSettings(url="https://github.com/Org/Repo.git")


@pytest.mark.parametrize(
    ("repo", "default_branch", "ref", "reason"),
    [
        (REPO, "main", "refs/heads/main", None),
        (REPO, "main", "refs/heads/feature", "not the default branch (main)"),
        (REPO, None, "refs/heads/main", "the default branch is not known"),
        (REPO, "main", "refs/tags/v1", None),
        (REPO, None, "refs/tags/anything/at/all", None),
        (REPO, "main", "refs/pull/1/head", "not a branch or tag"),
        (REPO, "main", "refs/notes/commits", "not a branch or tag"),
        (REPO.model_copy(update={"tags": []}), "main", "refs/tags/v1", "tag does not match"),
        (REPO.model_copy(update={"tags": ["v*"]}), "main", "refs/tags/v1", None),
        (REPO.model_copy(update={"tags": ["v*"]}), "main", "refs/tags/x1", "tag does not"),
        (REPO.model_copy(update={"branches": ["release/*"]}), "main", "refs/heads/main", "does"),
        (REPO.model_copy(update={"branches": ["release/*"]}), None, "refs/heads/release/1", None),
        (REPO.model_copy(update={"branches": ["*"]}), "main", "refs/heads/Feature", None),
        (REPO.model_copy(update={"branches": ["main"]}), "main", "refs/heads/MAIN", "does not"),
    ],
)
def test_which_refs_build(
    repo: RepoSettings, default_branch: str | None, ref: str, reason: str | None
) -> None:
    found = skip_reason(repo, default_branch, ref)
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


def test_short_names_and_resolved_refs() -> None:
    assert short_name("refs/heads/release/1") == "release/1"
    assert short_name("refs/tags/v1") == "v1"
    assert resolved_ref("refs/heads/main", "a" * 40) == ResolvedRef(
        "a" * 40, "branch", "refs/heads/main"
    )
    assert resolved_ref("refs/tags/v1", "a" * 40) == ResolvedRef("a" * 40, "tag", "refs/tags/v1")


def test_repos_are_matched_by_any_canonical_url() -> None:
    other = RepoSettings(url="https://gitlab.com/other/repo")
    local = RepoSettings(url="file:///srv/repo")
    repos = [other, REPO, local]
    assert REPO.url == "https://github.com/org/repo"
    assert match_repo(repos, ("ssh://git@github.com/org/repo", REPO.url), allow_file=False) is REPO
    assert match_repo(repos, ("https://github.com/org/repo2",), allow_file=False) is None
    assert match_repo(repos, ("file:///srv/repo",), allow_file=False) is None
    assert match_repo(repos, ("file:///srv/repo",), allow_file=True) is local


def test_pushes_name_repos_by_their_canonical_urls() -> None:
    spelled = "HTTPS://Git.Example.org:443/team/./%72epo.git/"
    data = _with(fixture(GH), spelled, "repository", "clone_url")
    push = parse_github("push", data)
    assert isinstance(push, Push)
    assert "https://git.example.org/team/repo" in push.urls
    assert spelled not in push.urls


def test_ls_remote_output() -> None:
    output = (
        "ref: refs/heads/main\tHEAD\n"
        f"{'1' * 40}\tHEAD\n"
        f"{'1' * 40}\trefs/heads/main\n"
        f"{'2' * 40}\trefs/heads/feature\n"
        f"{'3' * 40}\trefs/tags/light\n"
        f"{'4' * 40}\trefs/tags/annotated\n"
        f"{'5' * 40}\trefs/tags/annotated^{{}}\n"
        f"{'6' * 40}\trefs/pull/1/head\n"
    )
    remote = parse_ls_remote(output)
    assert remote.default_branch == "main"
    assert remote.refs == (
        ResolvedRef("1" * 40, "branch", "refs/heads/main"),
        ResolvedRef("2" * 40, "branch", "refs/heads/feature"),
        ResolvedRef("3" * 40, "tag", "refs/tags/light"),
        ResolvedRef("5" * 40, "tag", "refs/tags/annotated"),
    )
    assert parse_ls_remote("").default_branch is None


def test_deletions_of_selected_refs_are_told_apart_from_ignored_ones() -> None:
    repo = RepoSettings(url=REPO.url, branches=["main", "release/*"], tags=["v*"])
    push = Push(
        (REPO.url,),
        "main",
        (
            RefChange("refs/heads/release/1", None),
            RefChange("refs/heads/main", "1" * 40),
            RefChange("refs/tags/v2", None),
            RefChange("refs/tags/nightly", None),
            RefChange("refs/heads/topic", "2" * 40),
        ),
    )
    assert select_refs(repo, push) == Selection(
        builds=(Selected("refs/heads/main", "main", resolved_ref("refs/heads/main", "1" * 40)),),
        deleted=("refs/heads/release/1", "refs/tags/v2"),
        ignored=(
            ("refs/tags/nightly", "deleted"),
            ("refs/heads/topic", "branch does not match the repo's branches"),
        ),
    )


@pytest.mark.parametrize(
    ("delivery_id", "expected"),
    [
        ("72d3162e", "superseded by the deletion of refs/tags/v1 in github delivery 72d3162e"),
        (None, "superseded by the deletion of refs/tags/v1 in a github delivery"),
    ],
)
def test_the_error_of_a_build_a_deletion_superseded(delivery_id: str | None, expected: str) -> None:
    assert deletion_error("refs/tags/v1", "github", delivery_id) == expected


# -- the answer -----------------------------------------------------------------


def test_decision_json_is_pinned() -> None:
    sha, image = "a" * 40, "127.0.0.1:5000/binder-x:" + "a" * 40
    build = Build(
        id="b" * 32,
        repo=REPO.url,
        ref="main",
        ref_kind="branch",
        sha=sha,
        image=image,
        name="r2d-x",
        state=BuildState.QUEUED,
        trigger="github",
        created_at=0.0,
    )
    decision = Decision(
        "accepted",
        None,
        REPO.url,
        (
            ("refs/heads/main", BuildOutcome("created", REPO.url, "main", sha, image, build)),
            ("refs/tags/v1", BuildOutcome("cached", REPO.url, "v1", sha, image)),
        ),
        (("refs/tags/old", "deleted"),),
        (Deletion("refs/heads/gone", ("c" * 32,), ("d" * 32,)),),
    )
    assert push_status(PushAnswer(decision.to_json(), duplicate=False)) == 202
    assert decision.to_json() == {
        "outcome": "accepted",
        "reason": None,
        "repo": "https://github.com/org/repo",
        "builds": [
            {
                "id": "b" * 32,
                "ref": "refs/heads/main",
                "sha": sha,
                "image": image,
                "outcome": "created",
            },
            {"id": None, "ref": "refs/tags/v1", "sha": sha, "image": image, "outcome": "cached"},
        ],
        "deleted": [{"ref": "refs/heads/gone", "superseded": ["c" * 32], "kept": ["d" * 32]}],
        "ignored": [{"ref": "refs/tags/old", "reason": "deleted"}],
    }
    ignored = Decision("ignored", "repo not configured")
    assert push_status(PushAnswer(ignored.to_json(), duplicate=False)) == 200
    assert ignored.to_json() == {
        "outcome": "ignored",
        "reason": "repo not configured",
        "repo": None,
        "builds": [],
        "deleted": [],
        "ignored": [],
    }
