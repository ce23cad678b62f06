"""BinderHub's provider specs (``gh``, ``gl``, ``git``, ``gist``, ``zenodo``,
``figshare``, ``dataverse``, ``hydroshare``, ``ckan``) and ours (``swh``: BinderHub has
none), as the stream's paths spell them (``/build/<provider>/<spec>``) and the API's body
gives them (``{"provider": …, "spec": …}``, ``jobs.coordinator.build_requests.body_request``),
turned into what a user asks for (a ``RepoSpec``, or a record's text for ``parse_source``);
and the form of each spec (``spec_form``, for ``/api/repoproviders``). Pure functions, no
I/O.

A provider of another kind of source (issue 25: Dataverse, ...) adds its name
to ``PROVIDERS`` and its spec's form here once its records build
(docs/design-providers.md).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..errors import InvalidRequest, UnknownProvider
from .forms import CKAN_PREFIX, parse_source
from .record_urls import gist_page
from .records import DoiSource, RecordSource, check_swhid
from .specs import RepoSpec

PROVIDERS = (
    "gh",
    "gl",
    "git",
    "gist",
    "zenodo",
    "figshare",
    "dataverse",
    "hydroshare",
    "ckan",
    "swh",
)
"""The providers whose specs the stream takes, in BinderHub's names (``swh`` is ours)."""

_GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


RECORD_STREAM_PROVIDERS = ("zenodo", "figshare", "dataverse", "hydroshare", "ckan", "swh")
"""The stream's providers of records: their spec is a DOI or a record's URL (escaped
or not); HydroShare's may be a resource id, CKAN's is a dataset's URL only, ``swh``'s
a SWHID."""


STREAM_EXAMPLES = {
    "zenodo": "10.5281/zenodo.3242074",
    "figshare": "10.6084/m9.figshare.9782777",
    "dataverse": "10.7910/DVN/TJCLKP",
    "hydroshare": "b8f6eae9d89241cf8b5904033460af61",
    "ckan": "https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample-dataset-1",
    "swh": "swh:1:dir:" + "0" * 40,
}
_HYDROSHARE_ID = re.compile(r"^[0-9a-f]{32}$")


def _record_text(provider: str, text: str) -> str:
    """A record spec's text as ``parse_source`` reads it for ``provider``: a
    HydroShare resource id as its page, a CKAN URL as ``ckan:<URL>``."""
    if provider == "hydroshare" and _HYDROSHARE_ID.match(text):
        return f"https://www.hydroshare.org/resource/{text}"
    if provider == "ckan":
        return f"{CKAN_PREFIX}{text}"
    return text


def git_text(url: str) -> str:
    """A git provider's repository ``url`` (canonical) as ``parse_source`` reads it as
    git: as it is, or with ``.git`` at its end when its path is also a CKAN dataset
    page's (``https://git.example.org/dataset/tools``, which a pasted URL is read as):
    the same repository, since the canonical URL drops ``.git`` again. The provider
    (``git``) says what it is, unless the URL names its kind itself (``hg+https://…``, a
    Mercurial repository: the stream has no provider of its own for those). Pure."""
    try:
        source = parse_source(url)
    except InvalidRequest:
        return url
    if not isinstance(source, RecordSource) or source.provider == "hg":
        return url
    return f"{url}.git"


def stream_request(provider: str, spec: str) -> tuple[str, str | None]:
    """What a stream's ``/build/<provider>/<spec>`` asks for, as a build request's
    ``repo`` and ``ref``: a git spec's URL and ref (``repo_spec_for``), or a record's
    spec (``zenodo/<DOI>``, e.g. ``zenodo/10.5281/zenodo.3242074``, or
    ``figshare/10.6084/m9.figshare.9782777.v1``, ``dataverse/10.7910/DVN/TJCLKP``,
    ``hydroshare/<resource id or escaped URL>``, ``ckan/<escaped dataset URL>``,
    ``swh/swh:1:rev:<40 hex>``, escaped or not) with no ref. Raises
    ``UnknownProvider`` and ``InvalidRequest`` as ``repo_spec_for`` does, and
    ``InvalidRequest`` for a record spec that names no record of its provider."""
    if provider not in RECORD_STREAM_PROVIDERS:
        wanted = repo_spec_for(provider, spec)
        return git_text(wanted.url), wanted.ref
    text = unquote(spec)
    if provider == "swh":  # a SWHID and nothing else; a malformed one is named as such
        return check_swhid(text), None
    text = _record_text(provider, text)
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


GIT_SPEC_FORMS = {
    "gh": ("gh/<owner>/<repo>/<ref>", "gh/binder-examples/requirements/HEAD"),
    "gl": ("gl/<URL-escaped namespace>/<ref>", "gl/group%2Fproject/main"),
    "git": (
        "git/<URL-escaped repository URL>/<ref>",
        "git/https%3A%2F%2Fgit.example.org%2Frepo.git/main",
    ),
    "gist": ("gist/<user>/<id>[/<ref>]", "gist/user/0123456789abcdef0123"),
}
"""The form and an example of each git provider's spec, as the stream's path spells it."""


RECORD_SPEC_FORMS = {
    "hydroshare": "<resource id or escaped URL>",
    "ckan": "<escaped dataset URL>",
    "swh": "<SWHID>",
}
"""The spec of a provider of records whose spec is not a DOI or a record's URL."""


def spec_form(provider: str) -> dict[str, str]:
    """How ``provider``'s spec is written, as the stream's path spells it (the API's
    ``spec`` is what follows ``<provider>/``): ``{"form": …, "example": …}``, e.g.
    ``{"form": "zenodo/<DOI or record URL>", "example": "zenodo/10.5281/zenodo.3242074"}``.
    A provider of records without an example in ``STREAM_EXAMPLES`` gets its form only.
    Pure."""
    if provider in GIT_SPEC_FORMS:
        form, example = GIT_SPEC_FORMS[provider]
        return {"form": form, "example": example}
    described = {"form": f"{provider}/{RECORD_SPEC_FORMS.get(provider, '<DOI or record URL>')}"}
    if provider in STREAM_EXAMPLES:
        described["example"] = f"{provider}/{STREAM_EXAMPLES[provider]}"
    return described
