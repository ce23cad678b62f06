"""BinderHub's provider specs (``gh``, ``gl``, ``git``, ``gist``), as the stream's paths
spell them (``/build/<provider>/<spec>``), turned into what a user asks for (a
``RepoSpec``). Pure functions, no I/O.

A provider of another kind of source (issue 25: Zenodo, Figshare, Dataverse, ...) adds
its name to ``PROVIDERS`` and its spec's form here once its records build
(docs/design-providers.md).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..errors import InvalidRequest, UnknownProvider
from .record_urls import gist_page
from .specs import RepoSpec

PROVIDERS = ("gh", "gl", "git", "gist")
"""The providers whose specs the stream takes, in BinderHub's names."""

_GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def repo_spec_for(provider: str, spec: str) -> RepoSpec:
    """A BinderHub provider spec (still URL-escaped) as a repository URL and a ref.

    - ``gh/<owner>/<repo>/<ref>``: the ref is the rest of the path, so it may contain
      ``/`` (escaped or not);
    - ``gl/<URL-escaped namespace>/<ref>``, e.g. ``gl/group%2Fproject/main``;
    - ``git/<URL-escaped repository URL>/<ref>``, e.g.
      ``git/https%3A%2F%2Fexample.org%2Fr/main``;
    - ``gist/<user>/<id>[/<ref>]``: the gist's git repository at the ref (a commit SHA or
      ``HEAD``, ``main``, ``master``; ``HEAD`` when none).

    Raises ``UnknownProvider`` (a ``NotFound``) for another provider and
    ``InvalidRequest`` for a spec that does not have its provider's form. The URL and
    ref are checked again, fully, when the request is received.
    """
    if provider == "gh":
        parts = spec.split("/", 2)
        if (
            len(parts) != 3
            or not parts[2]
            or not all(_GITHUB_NAME.match(part) for part in parts[:2])
        ):
            raise InvalidRequest(
                "a gh spec is gh/<owner>/<repo>/<ref>, e.g. gh/binder-examples/requirements/HEAD"
            )
        return RepoSpec(f"https://github.com/{parts[0]}/{parts[1]}", unquote(parts[2]))
    if provider == "gl":
        quoted, _, ref = spec.partition("/")
        namespace = unquote(quoted)
        if not ref or "/" not in namespace.strip("/"):
            raise InvalidRequest(
                "a gl spec is gl/<URL-escaped namespace>/<ref>, e.g. gl/group%2Fproject/main"
            )
        return RepoSpec(f"https://gitlab.com/{namespace}", unquote(ref))
    if provider == "git":
        quoted, _, ref = spec.partition("/")
        url = unquote(quoted)
        if not ref or ("://" not in url and "@" not in url):
            raise InvalidRequest(
                "a git spec is git/<URL-escaped repository URL>/<ref>, "
                "e.g. git/https%3A%2F%2Fgit.example.org%2Frepo.git/main"
            )
        return RepoSpec(url, unquote(ref))
    if provider == "gist":
        parts = [unquote(part) for part in spec.split("/")]
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidRequest("a gist spec is gist/<user>/<id>[/<ref>]")
        return gist_page(parts).spec
    raise UnknownProvider(
        f"no provider {provider!r}: this service builds from {', '.join(PROVIDERS)}"
    )
