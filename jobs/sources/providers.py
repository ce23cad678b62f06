"""BinderHub's provider specs (``gh``, ``gl``, ``git``, ``gist``, ``zenodo``,
``figshare``, ``dataverse``), as the
stream's paths spell them (``/build/<provider>/<spec>``), turned into what a user asks
for (a ``RepoSpec``, or a record's text for ``parse_source``). Pure functions, no I/O.

A provider of another kind of source (issue 25: Dataverse, HydroShare, ...) adds its name
to ``PROVIDERS`` and its spec's form here once its records build
(docs/design-providers.md).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..errors import InvalidRequest, UnknownProvider
from .forms import parse_source
from .record_urls import gist_page
from .records import DoiSource, RecordSource
from .specs import RepoSpec

PROVIDERS = ("gh", "gl", "git", "gist", "zenodo", "figshare", "dataverse")
"""The providers whose specs the stream takes, in BinderHub's names."""

_GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


RECORD_STREAM_PROVIDERS = ("zenodo", "figshare", "dataverse")
"""The stream's providers of records: their spec is a DOI or a record's URL."""


STREAM_EXAMPLES = {
    "zenodo": "10.5281/zenodo.3242074",
    "figshare": "10.6084/m9.figshare.9782777",
    "dataverse": "10.7910/DVN/TJCLKP",
}


def stream_request(provider: str, spec: str) -> tuple[str, str | None]:
    """What a stream's ``/build/<provider>/<spec>`` asks for, as a build request's
    ``repo`` and ``ref``: a git spec's URL and ref (``repo_spec_for``), or a record's
    spec (``zenodo/<DOI>``, e.g. ``zenodo/10.5281/zenodo.3242074``, or
    ``figshare/10.6084/m9.figshare.9782777.v1``, ``dataverse/10.7910/DVN/TJCLKP``, escaped
    or not) with no ref. Raises
    ``UnknownProvider`` and ``InvalidRequest`` as ``repo_spec_for`` does, and
    ``InvalidRequest`` for a record spec that names no record of its provider."""
    if provider not in RECORD_STREAM_PROVIDERS:
        wanted = repo_spec_for(provider, spec)
        return wanted.url, wanted.ref
    text = unquote(spec)
    try:
        source: object = parse_source(text)
    except InvalidRequest:
        source = None
    its_own = isinstance(source, RecordSource) and source.provider == provider
    if not (its_own or isinstance(source, DoiSource)):
        raise InvalidRequest(
            f"a {provider} spec is {provider}/<DOI or record URL>, "
            f"e.g. {provider}/{STREAM_EXAMPLES[provider]}"
        )
    return text, None


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
    if provider in RECORD_STREAM_PROVIDERS:
        raise InvalidRequest(f"{provider} names records, not git repositories")
    raise UnknownProvider(
        f"no provider {provider!r}: this service builds from {', '.join(PROVIDERS)}"
    )
