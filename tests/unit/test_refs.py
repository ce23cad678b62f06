from __future__ import annotations

import pytest

from jobs.errors import InvalidRequest
from jobs.sources.refs import RefResolver, pick_ref
from jobs.sources.specs import ResolvedRef

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
LS_REMOTE = f"""{A}\tHEAD
{A}\trefs/heads/main
{B}\trefs/heads/v1
{C}\trefs/tags/v1
{D}\trefs/tags/v1^{{}}
{C}\trefs/tags/light
{B}\trefs/pull/1/head
"""


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("HEAD", ResolvedRef(A, "head", "HEAD")),
        ("main", ResolvedRef(A, "branch", "refs/heads/main")),
        # a branch wins over a tag of the same name, as git's own lookup order has it
        ("v1", ResolvedRef(B, "branch", "refs/heads/v1")),
        # an annotated tag resolves to the commit it points at, not the tag object
        ("refs/tags/v1", ResolvedRef(D, "tag", "refs/tags/v1")),
        ("light", ResolvedRef(C, "tag", "refs/tags/light")),
        ("refs/pull/1/head", ResolvedRef(B, "other", "refs/pull/1/head")),
        ("missing", None),
        ("refs/heads/missing", None),
    ],
)
def test_pick_ref(ref: str, expected: ResolvedRef | None) -> None:
    assert pick_ref(LS_REMOTE, ref) == expected


def test_pick_ref_ignores_garbage_lines() -> None:
    assert pick_ref("warning: something\nnot-a-sha\trefs/heads/main\n", "main") is None


@pytest.mark.anyio
async def test_full_shas_need_no_lookup_and_upper_case_is_refused() -> None:
    resolver = RefResolver(timeout=1, ttl=30)
    resolved = await resolver.resolve("https://nowhere.invalid/x", A)
    assert resolved == ResolvedRef(A, "commit", A)
    with pytest.raises(InvalidRequest, match="lower case"):
        await resolver.resolve("https://nowhere.invalid/x", A.upper())


def test_cache_respects_its_ttl() -> None:
    now = [100.0]
    resolver = RefResolver(timeout=1, ttl=30, clock=lambda: now[0])
    resolved = ResolvedRef(A, "branch", "refs/heads/main")
    resolver.remember("https://example.org/r", "main", resolved)
    assert resolver.cached("https://example.org/r", "main") == resolved
    now[0] += 30.5
    assert resolver.cached("https://example.org/r", "main") is None
