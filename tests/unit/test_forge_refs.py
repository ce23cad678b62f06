"""jobs.forges.base.resolve_ref: the ref-resolution rules both forge clients share, over
lookups answered from a dict (the clients' own lookups are tested against stand-ins of
the real APIs in tests/integration/test_forge_api.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.forges.base import RefLookups, RefMissing, resolve_ref
from jobs.sources.specs import ResolvedRef, looks_like_abbreviated_sha

MAIN = "a" * 40
TAGGED = "b" * 40
COMMIT = "0123456" + "c" * 33


def lookups(*, visible: bool = True) -> tuple[RefLookups, list[str]]:
    asked: list[str] = []
    branches = {"main": MAIN, "both": MAIN}
    tags = {"v1": TAGGED, "both": TAGGED}

    def find(kind: str, table: dict[str, str]) -> Callable[[str], str | None]:
        def lookup(name: str) -> str | None:
            asked.append(f"{kind} {name}")
            return table.get(name) if visible else None

        return lookup

    def commit(prefix: str) -> str | None:
        asked.append(f"commit {prefix}")
        return COMMIT if visible and COMMIT.startswith(prefix) else None

    def default_branch() -> str | None:
        asked.append("default")
        return "main" if visible else None

    return RefLookups(default_branch, find("branch", branches), find("tag", tags), commit), asked


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("HEAD", ResolvedRef(MAIN, "head", "HEAD")),
        ("main", ResolvedRef(MAIN, "branch", "refs/heads/main")),
        ("v1", ResolvedRef(TAGGED, "tag", "refs/tags/v1")),
        ("both", ResolvedRef(MAIN, "branch", "refs/heads/both")),
        ("refs/heads/main", ResolvedRef(MAIN, "branch", "refs/heads/main")),
        ("refs/tags/both", ResolvedRef(TAGGED, "tag", "refs/tags/both")),
        ("0123456", ResolvedRef(COMMIT, "commit", COMMIT)),
        ("refs/pull/1/head", None),
    ],
)
def test_what_a_ref_names(ref: str, expected: ResolvedRef | None) -> None:
    found, _ = lookups()
    assert resolve_ref(found, ref) == expected


@pytest.mark.parametrize("ref", ["nope", "refs/heads/nope", "refs/tags/nope", "fedcba9"])
def test_a_missing_ref_of_a_visible_project_is_missing(ref: str) -> None:
    found, _ = lookups()
    with pytest.raises(RefMissing):
        resolve_ref(found, ref)


@pytest.mark.parametrize("ref", ["HEAD", "main", "refs/heads/main", "0123456"])
def test_a_project_the_token_cannot_see_is_left_to_git(ref: str) -> None:
    found, _ = lookups(visible=False)
    assert resolve_ref(found, ref) is None


def test_only_what_could_be_an_abbreviated_sha_is_asked_as_a_commit() -> None:
    found, asked = lookups()
    with pytest.raises(RefMissing):
        resolve_ref(found, "nope")
    assert asked == ["branch nope", "tag nope", "default"]
    assert looks_like_abbreviated_sha("0123456")
    assert not looks_like_abbreviated_sha("012345")
    assert not looks_like_abbreviated_sha("0123456G")
    assert not looks_like_abbreviated_sha("A123456")
    assert not looks_like_abbreviated_sha("a" * 40)
