"""Pages of GitHub, GitLab and Gitea (Forgejo, Codeberg) that users paste: tree, blob,
commit, tag and pull-request URLs, turned into a repository and a ref (issue 25).
Pure functions, no I/O.

The forms are the forges' own URL layouts: GitHub ``/<owner>/<repo>/tree|blob/<ref>…``,
``/commit/<sha>``, ``/releases/tag/<tag>``, ``/pull/<n>``; GitLab the same under
``/-/`` (``/-/merge_requests/<n>``, ``/-/tags/<tag>``); Gitea ``/src/branch|tag|commit/…``,
``/commit/<sha>``, ``/pulls/<n>``. A pull request builds its head commit, which the forges
publish as a ref: GitHub and Gitea ``refs/pull/<n>/head``, GitLab
``refs/merge-requests/<n>/head``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..errors import InvalidRequest
from .records import GitSource
from .specs import RepoSpec, check_ref, repo_spec

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_NUMBER = re.compile(r"^[1-9][0-9]{0,9}$")
GITHUB_FORMS = "tree/<ref>, blob/<ref>/<path>, commit/<sha>, releases/tag/<tag> or pull/<n>"


def _rest(parts: list[str]) -> str:
    return "/".join(unquote(part) for part in parts)


def _commit(repo: str, parts: list[str]) -> GitSource | None:
    if parts and _SHA.match(parts[0].lower()):
        return GitSource(repo_spec(repo, parts[0].lower()))
    return None


def _change(repo: str, parts: list[str], kind: str) -> GitSource | None:
    if parts and _NUMBER.match(parts[0]):
        return GitSource(repo_spec(repo, f"refs/{kind}/{parts[0]}/head"))
    return None


def _tree(repo: str, parts: list[str], prefix: str = "") -> GitSource | None:
    """A ref followed by a path: checked as a ref only in its prefixes
    (``ref_candidates``), since a path may end the way no ref may (``x.lock``)."""
    rest = prefix + _rest(parts).strip("/")
    if rest == prefix or not ref_candidates(rest):
        return None
    return GitSource(RepoSpec(repo_spec(repo, None).url, rest), ref_has_path=True)


def _tag(repo: str, parts: list[str]) -> GitSource | None:
    rest = _rest(parts).strip("/")
    return GitSource(repo_spec(repo, f"refs/tags/{rest}")) if rest else None


def github_like(repo: str, page: list[str]) -> GitSource | None:
    """A GitHub-layout page (``tree``, ``blob``, ``commit``, ``releases/tag``, ``pull``)
    of the repository ``repo`` (a URL), or None when ``page`` is none of them."""
    kind, rest = (page[0], page[1:]) if page else ("", [])
    if kind in ("tree", "blob"):
        return _tree(repo, rest)
    if kind == "commit":
        return _commit(repo, rest)
    if kind == "releases" and rest[:1] == ["tag"]:
        return _tag(repo, rest[1:])
    if kind == "pull":
        return _change(repo, rest, "pull")
    return None


def gitlab_page(repo: str, page: list[str]) -> GitSource | None:
    """A GitLab page after ``/-/`` (``tree``, ``blob``, ``commit``, ``tags``,
    ``merge_requests``) of ``repo``, or None."""
    kind, rest = (page[0], page[1:]) if page else ("", [])
    if kind in ("tree", "blob"):
        return _tree(repo, rest)
    if kind == "commit":
        return _commit(repo, rest)
    if kind == "tags":
        return _tag(repo, rest)
    if kind == "merge_requests":
        return _change(repo, rest, "merge-requests")
    return None


def gitea_page(repo: str, page: list[str]) -> GitSource | None:
    """A Gitea/Forgejo page (``src/branch|tag|commit``, ``commit``, ``pulls``) of
    ``repo``, or None."""
    kind, rest = (page[0], page[1:]) if page else ("", [])
    if kind == "src" and rest:
        how, rest = rest[0], rest[1:]
        if how == "branch":
            return _tree(repo, rest)
        if how == "tag":
            return _tree(repo, rest, prefix="refs/tags/")
        if how == "commit":
            return _commit(repo, rest)
        return None
    if kind == "commit":
        return _commit(repo, rest)
    if kind == "pulls":
        return _change(repo, rest, "pull")
    return None


def forge_page(base: str, segments: list[str], *, github: bool) -> GitSource | None:
    """The git source a forge page names, or None when ``segments`` (the URL path's,
    still escaped) are no page form and the URL should be read as a clone URL.

    ``base`` is ``scheme://host[:port]``. ``github``: the host is GitHub, where a
    repository is exactly ``<owner>/<repo>`` and any other page is refused
    (``InvalidRequest`` naming the forms). Elsewhere the first page keyword found after
    at least two segments decides (GitLab's ``-`` first).
    """
    if github:
        if len(segments) <= 2:
            return None
        found = github_like(f"{base}/{segments[0]}/{segments[1]}", segments[2:])
        if found is None:
            raise InvalidRequest(
                f"a GitHub URL is https://github.com/<owner>/<repo> or, after it, {GITHUB_FORMS}"
            )
        return found
    if "-" in segments[2:]:
        cut = segments.index("-", 2)
        found = gitlab_page(f"{base}/{'/'.join(segments[:cut])}", segments[cut + 1 :])
        if found is None:
            raise InvalidRequest(
                "a GitLab page URL is <project URL>/-/tree/<ref>, -/blob/<ref>/<path>, "
                "-/commit/<sha>, -/tags/<tag> or -/merge_requests/<n>"
            )
        return found
    for cut in range(2, len(segments)):
        repo = f"{base}/{'/'.join(segments[:cut])}"
        found = gitea_page(repo, segments[cut:]) or github_like(repo, segments[cut:])
        if found is not None:
            return found
    return None


REF_CANDIDATES = 8


def ref_candidates(rest: str) -> list[str]:
    """The refs a tree or blob URL's ``rest`` (``<ref>[/<path>]``) may name: its
    prefixes of at most ``REF_CANDIDATES`` segments, longest first, those git would take
    as a ref. Pure."""
    parts = rest.split("/")
    found = []
    for end in range(min(len(parts), REF_CANDIDATES), 0, -1):
        candidate = "/".join(parts[:end])
        try:
            found.append(check_ref(candidate))
        except InvalidRequest:
            continue
    return found
