"""The retention policy (``jobs.retention.policy``): one scenario pinned by a golden plan
(``golden/retention_plan.json``), and each safety rule on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.retention.policy import (
    ImageRecord,
    RegistryImage,
    RetentionRules,
    freed_bytes,
    freed_per_manifest,
    newest_per_ref,
    plan_retention,
)

GOLDEN = Path(__file__).parent / "golden" / "retention_plan.json"
DAY = 86400.0
NOW = 1_800_000_000.0
HOST = "registry.example.org"
REPO_A = "https://github.com/owner/a"
REPO_B = "https://github.com/owner/b"


def sha(n: int) -> str:
    return f"{n:040x}"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def tag(repository: str, tag_: str, digest_: str) -> RegistryImage:
    return RegistryImage(f"{HOST}/{repository}:{tag_}", repository, tag_, digest_)


def record(
    image: RegistryImage,
    repo: str,
    ref: str,
    kind: str,
    days_ago: float,
    asked: float | None = None,
) -> ImageRecord:
    return ImageRecord(
        image.image,
        repo,
        ref,
        kind,
        NOW - days_ago * DAY,
        None if asked is None else NOW - asked * DAY,
    )


def scenario() -> tuple[list[RegistryImage], dict[str, ImageRecord], set[str], set[str]]:
    """Repository a: six commits of main (100 to 95 days old; the fifth runs in a user
    server, the fourth was requested yesterday), tag v1 (200 days, offered), a bare
    commit (150 days), the BuildKit cache, a ``latest`` someone pushed, an image the
    store never recorded, and an old main commit whose manifest is the newest's too.
    Repository b: two superseded commits of one manifest, and its newest."""
    a, b = "binder-a-11111111", "binder-b-22222222"
    main = [tag(a, sha(i), digest(i)) for i in range(1, 7)]  # main[5] newest
    v1 = tag(a, sha(10), digest(10))
    bare = tag(a, sha(11), digest(11))
    cache = tag(a, "buildcache", digest(12))
    latest = tag(a, "latest", digest(13))
    stranger = tag(a, sha(14), digest(14))
    twin = tag(a, sha(15), digest(6))  # same manifest as main[5]
    b_old = [tag(b, sha(20), digest(20)), tag(b, sha(21), digest(20))]
    b_new = tag(b, sha(22), digest(22))
    images = [*main, v1, bare, cache, latest, stranger, twin, *b_old, b_new]
    records = {
        r.image: r
        for r in [
            *(record(m, REPO_A, "refs/heads/main", "branch", 100 - i) for i, m in enumerate(main)),
            record(main[3], REPO_A, "refs/heads/main", "branch", 97, asked=1),
            record(v1, REPO_A, "refs/tags/v1", "tag", 200),
            record(bare, REPO_A, sha(11), "commit", 150),
            record(twin, REPO_A, "refs/heads/main", "branch", 300),
            record(b_old[0], REPO_B, "HEAD", "head", 60),
            record(b_old[1], REPO_B, "HEAD", "head", 50),
            record(b_new, REPO_B, "HEAD", "head", 40),
        ]
    }
    offered = {main[5].image, v1.image, b_new.image}
    in_use = {digest(5)}  # a pod's imageID names the digest of main[4]
    return images, records, offered, in_use


RULES = RetentionRules(keep_per_ref=1, keep_seconds=30 * DAY)


def test_the_scenario_s_plan_is_the_golden_one() -> None:
    images, records, offered, in_use = scenario()
    plan = plan_retention(images, records, offered, in_use, NOW, RULES)
    assert plan.to_json() == json.loads(GOLDEN.read_text())


def test_the_plan_keeps_what_the_rules_name_and_deletes_the_superseded() -> None:
    images, records, offered, in_use = scenario()
    plan = plan_retention(images, records, offered, in_use, NOW, RULES)
    deleted = {image for d in plan.delete for image in d.images}
    assert deleted == {f"{HOST}/binder-a-11111111:{sha(n)}" for n in (1, 2, 3, 11)} | {
        f"{HOST}/binder-b-22222222:{sha(n)}" for n in (20, 21)
    }
    # one DELETE for the manifest both b tags name
    assert [len(d.images) for d in plan.delete if "binder-b" in d.repository] == [2]
    # oldest first
    assert [d.built_at for d in plan.delete] == sorted(d.built_at for d in plan.delete)
    kept = {k.image: k.reasons for k in plan.keep}
    assert kept[f"{HOST}/binder-a-11111111:{sha(5)}"] == ("in-use",)
    assert kept[f"{HOST}/binder-a-11111111:{sha(4)}"] == ("recent",)
    assert kept[f"{HOST}/binder-a-11111111:{sha(6)}"] == ("offered", "newest")
    assert kept[f"{HOST}/binder-a-11111111:{sha(15)}"] == ("shares-digest",)
    assert kept[f"{HOST}/binder-a-11111111:buildcache"] == ("unrecorded", "not-ours")
    assert kept[f"{HOST}/binder-a-11111111:{sha(14)}"] == ("unrecorded",)


def test_no_kept_image_and_no_deleted_manifest_overlap() -> None:
    """Deleting a manifest deletes every tag naming it: no kept tag may name one."""
    images, records, offered, in_use = scenario()
    for keep_per_ref in (1, 2, 5):
        rules = RetentionRules(keep_per_ref, 30 * DAY)
        plan = plan_retention(images, records, offered, in_use, NOW, rules)
        kept = {(i.repository, i.digest) for i in images if i.image in {k.image for k in plan.keep}}
        assert not kept & {(d.repository, d.digest) for d in plan.delete}
        assert {k.image for k in plan.keep} | {i for d in plan.delete for i in d.images} == {
            i.image for i in images
        }


def test_in_use_and_offered_images_are_kept_whatever_their_age() -> None:
    images, records, _, _ = scenario()
    every = {i.image for i in images}
    plan = plan_retention(images, records, every, set(), NOW + 1000 * DAY, RULES)
    assert plan.delete == ()
    digests = {i.digest for i in images}
    plan = plan_retention(images, records, set(), digests, NOW + 1000 * DAY, RULES)
    assert plan.delete == ()


def test_more_kept_per_ref_deletes_fewer() -> None:
    images, records, offered, in_use = scenario()
    counts = [
        len(plan_retention(images, records, offered, in_use, NOW, RetentionRules(n, DAY)).delete)
        for n in (1, 2, 3, 10)
    ]
    assert counts == sorted(counts, reverse=True)
    # with 10 per ref every image of a branch, tag or default branch is kept; the bare
    # commit, 150 days old, is no ref's newest
    assert counts[-1] == 1


def test_newest_per_ref_groups_by_repository_kind_and_ref() -> None:
    r = [
        ImageRecord("x:1", REPO_A, "refs/heads/main", "branch", 1.0),
        ImageRecord("x:2", REPO_A, "refs/heads/main", "branch", 2.0),
        ImageRecord("x:3", REPO_B, "refs/heads/main", "branch", 0.5),
        ImageRecord("x:4", REPO_A, "refs/tags/main", "tag", 0.1),
        ImageRecord("x:5", REPO_A, sha(5), "commit", 9.0),
        ImageRecord("x:6", REPO_A, "HEAD", "head", 0.2),
    ]
    assert newest_per_ref(r, 1) == {"x:2", "x:3", "x:4", "x:6"}
    assert newest_per_ref(r, 2) == {"x:1", "x:2", "x:3", "x:4", "x:6"}


@pytest.mark.parametrize(("keep_per_ref", "keep_seconds"), [(0, DAY), (1, 0.0), (-1, -1.0)])
def test_a_policy_that_would_keep_nothing_is_refused(
    keep_per_ref: int, keep_seconds: float
) -> None:
    with pytest.raises(ValueError, match="keep"):
        RetentionRules(keep_per_ref, keep_seconds)


def test_freed_bytes_counts_blobs_only_the_deleted_hold() -> None:
    base, config_a, layer_a, config_b = "sha256:ba5e", "sha256:ca", "sha256:1a", "sha256:cb"
    doomed = [{base: 1000, config_a: 10, layer_a: 100}, {base: 1000, layer_a: 100}]
    kept = [{base: 1000, config_b: 20}]
    assert freed_bytes(doomed, kept) == 110
    assert freed_bytes(doomed, []) == 1110
    assert freed_bytes([], kept) == 0


def test_each_blob_counts_once_for_the_last_deletion_that_holds_it() -> None:
    base, config_a, layer_a, config_c = "sha256:ba5e", "sha256:ca", "sha256:1a", "sha256:cc"
    doomed = [
        {base: 1000, config_a: 10, layer_a: 100},
        {base: 1000, layer_a: 100, config_c: 1},
        {base: 1000},
    ]
    # the base goes with the last manifest that holds it, the shared layer with the second
    assert freed_per_manifest(doomed, []) == [10, 101, 1000]
    assert sum(freed_per_manifest(doomed, [])) == freed_bytes(doomed, [])
    # a kept manifest holds the base: nobody frees it
    assert freed_per_manifest(doomed, [{base: 1000}]) == [10, 101, 0]
    assert freed_per_manifest([], [{base: 1000}]) == []
