"""Every form of content a user may give (docs/design-providers.md, "Forms users give")
and what it parses to (jobs/sources/forms.py): golden tests, and the refusals."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from jobs import errors
from jobs.sources.forge_urls import ref_candidates
from jobs.sources.forms import parse_source
from jobs.sources.records import DoiSource, GitSource, RecordSource, Source
from webhook.errors import status_for

SHA = "0123456789abcdef0123456789abcdef01234567"
HEX32 = "8f7c2f0341ef4180b0dbe97f59130756"
UUID = "0b3f5a4e-7c1d-4f7e-9d2a-1e2f3a4b5c6d"


def shape(source: Source) -> tuple[str | bool | None, ...]:
    """A source as a flat tuple: ``("git", url, ref, ref_has_path)``, ``("doi", doi)``
    or ``(provider, host, record, version)``."""
    if isinstance(source, GitSource):
        return ("git", source.spec.url, source.spec.ref, source.ref_has_path)
    if isinstance(source, DoiSource):
        return ("doi", source.doi)
    assert isinstance(source, RecordSource)
    return (source.provider, source.host, source.record, source.version)


GH = "https://github.com/o/r"
GL = "https://gitlab.com/g/sub/p"
CB = "https://codeberg.org/o/r"

FORMS: list[tuple[str, tuple[str | bool | None, ...]]] = [
    # git: plain repositories and clone URLs
    ("https://github.com/o/r", ("git", GH, "HEAD", False)),
    ("  https://github.com/O/R.git/ ", ("git", GH, "HEAD", False)),
    ("git@github.com:o/r.git", ("git", "ssh://git@github.com/o/r", "HEAD", False)),
    ("10.0.0.5:team/repo", ("git", "ssh://10.0.0.5/team/repo", "HEAD", False)),
    ("swh:team/repo", ("git", "ssh://swh/team/repo", "HEAD", False)),
    ("doi:team/repo", ("git", "ssh://doi/team/repo", "HEAD", False)),
    ("gh/o/r/v1", ("git", GH, "v1", False)),
    (
        "https://git.example.org/team/repo.git",
        ("git", "https://git.example.org/team/repo", "HEAD", False),
    ),
    # GitHub pages
    ("https://github.com/o/r/tree/main", ("git", GH, "main", True)),
    ("https://github.com/o/r/tree/release/1.0/docs", ("git", GH, "release/1.0/docs", True)),
    ("https://github.com/o/r/blob/main/environment.yml", ("git", GH, "main/environment.yml", True)),
    (f"https://github.com/o/r/commit/{SHA}", ("git", GH, SHA, False)),
    ("https://github.com/o/r/commit/ABCDEF1", ("git", GH, "abcdef1", False)),
    ("https://github.com/o/r/releases/tag/v1.2", ("git", GH, "refs/tags/v1.2", False)),
    ("https://github.com/o/r/pull/7", ("git", GH, "refs/pull/7/head", False)),
    ("https://github.com/o/r/pull/7/files", ("git", GH, "refs/pull/7/head", False)),
    # GitLab pages
    ("https://gitlab.com/g/sub/p/-/tree/main", ("git", GL, "main", True)),
    ("https://gitlab.com/g/sub/p/-/blob/main/README.md", ("git", GL, "main/README.md", True)),
    (f"https://gitlab.com/g/sub/p/-/commit/{SHA}", ("git", GL, SHA, False)),
    ("https://gitlab.com/g/sub/p/-/tags/v1", ("git", GL, "refs/tags/v1", False)),
    (
        "https://gitlab.com/g/sub/p/-/merge_requests/3",
        ("git", GL, "refs/merge-requests/3/head", False),
    ),
    # Gitea / Forgejo pages
    ("https://codeberg.org/o/r/src/branch/main/docs", ("git", CB, "main/docs", True)),
    ("https://codeberg.org/o/r/src/tag/v1", ("git", CB, "refs/tags/v1", True)),
    (f"https://codeberg.org/o/r/src/commit/{SHA}/README.md", ("git", CB, SHA, False)),
    (f"https://codeberg.org/o/r/commit/{SHA}", ("git", CB, SHA, False)),
    ("https://codeberg.org/o/r/pulls/2", ("git", CB, "refs/pull/2/head", False)),
    # gists
    (
        "https://gist.github.com/user/0123456789abcdef0123",
        ("git", "https://gist.github.com/0123456789abcdef0123", "HEAD", False),
    ),
    (
        f"https://gist.github.com/user/{HEX32}/{SHA}",
        ("git", f"https://gist.github.com/{HEX32}", SHA, False),
    ),
    (
        f"https://gist.github.com/{HEX32}",
        ("git", f"https://gist.github.com/{HEX32}", "HEAD", False),
    ),
    # DOIs
    ("10.5281/zenodo.3242074", ("zenodo", "zenodo.org", "3242074", None)),
    ("doi:10.5281/ZENODO.3242074", ("zenodo", "zenodo.org", "3242074", None)),
    ("https://doi.org/10.5281/zenodo.3242074", ("zenodo", "zenodo.org", "3242074", None)),
    ("https://dx.doi.org/10.5072/zenodo.12", ("zenodo", "sandbox.zenodo.org", "12", None)),
    ("10.6084/m9.figshare.9782777", ("figshare", "figshare.com", "9782777", None)),
    ("10.6084/m9.figshare.9782777.v2", ("figshare", "figshare.com", "9782777", "2")),
    ("doi:10.7910/DVN/TJCLKP", ("doi", "10.7910/dvn/tjclkp")),
    ("https://doi.org/10.7910/DVN/TJCLKP", ("doi", "10.7910/dvn/tjclkp")),
    ("https://doi.org/10.4211%2Fhs.8f7c", ("doi", "10.4211/hs.8f7c")),
    # Zenodo pages
    ("https://zenodo.org/records/3242075", ("zenodo", "zenodo.org", "3242075", None)),
    ("https://zenodo.org/record/3242075/", ("zenodo", "zenodo.org", "3242075", None)),
    ("https://zenodo.org/api/records/3242075", ("zenodo", "zenodo.org", "3242075", None)),
    ("https://sandbox.zenodo.org/records/55", ("zenodo", "sandbox.zenodo.org", "55", None)),
    ("https://zenodo.org/doi/10.5281/zenodo.3242074", ("zenodo", "zenodo.org", "3242074", None)),
    # Figshare pages
    (
        "https://figshare.com/articles/code/binder-examples_requirements/9782777",
        ("figshare", "figshare.com", "9782777", None),
    ),
    (
        "https://figshare.com/articles/code/binder-examples_requirements/9782777/2",
        ("figshare", "figshare.com", "9782777", "2"),
    ),
    (
        "https://figshare.com/articles/binder-examples_requirements/9782777/3",
        ("figshare", "figshare.com", "9782777", "3"),
    ),
    ("https://uni.figshare.com/articles/dataset/x/123", ("figshare", "figshare.com", "123", None)),
    # Dataverse pages, on any host
    (
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP",
        ("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP", None),
    ),
    (
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP&version=2.1",
        ("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/TJCLKP", "2.1"),
    ),
    (
        "https://data.example.edu/citation?persistentId=DOI:10.5072/FK2/ABC",
        ("dataverse", "data.example.edu", "doi:10.5072/FK2/ABC", None),
    ),
    (
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/X&version=DRAFT",
        ("dataverse", "dataverse.harvard.edu", "doi:10.7910/DVN/X", None),
    ),
    # HydroShare
    (
        f"https://www.hydroshare.org/resource/{HEX32}/",
        ("hydroshare", "www.hydroshare.org", HEX32, None),
    ),
    (f"https://hydroshare.org/resource/{HEX32}", ("hydroshare", "www.hydroshare.org", HEX32, None)),
    # CKAN (more below: CKAN_PAGES)
    (
        f"https://data.example.org/dataset/my-data?activity_id={UUID}",
        ("ckan", "data.example.org", "my-data", UUID),
    ),
    # Software Heritage
    (f"swh:1:dir:{SHA}", ("swh", "archive.softwareheritage.org", f"swh:1:dir:{SHA}", None)),
    (
        f"swh:1:rev:{SHA};origin=https://github.com/o/r",
        ("swh", "archive.softwareheritage.org", f"swh:1:rev:{SHA}", None),
    ),
]


@pytest.mark.parametrize(("given", "expected"), FORMS, ids=[given for given, _ in FORMS])
def test_every_form_parses_to_its_source(
    given: str, expected: tuple[str | bool | None, ...]
) -> None:
    assert shape(parse_source(given)) == expected


CKAN_PAGES: list[tuple[str, tuple[str | bool | None, ...]]] = [
    # CKAN's dataset page on any host, as BinderHub's ckan provider takes it
    ("https://demo.ckan.org/dataset/sample-001", ("ckan", "demo.ckan.org", "sample-001", None)),
    ("http://demo.ckan.org/dataset/sample-001/", ("ckan", "demo.ckan.org", "sample-001", None)),
    (
        f"https://demo.ckan.org/dataset/{UUID}",
        ("ckan", "demo.ckan.org", UUID, None),
    ),
    (
        f"https://demo.ckan.org/catalog/dataset/sample-001/history/{UUID}",
        ("ckan", "demo.ckan.org/catalog", "sample-001", UUID),
    ),
    (
        f"https://data.example.org:8443/a/b/dataset/x_1?activity_id={UUID}",
        ("ckan", "data.example.org:8443/a/b", "x_1", UUID),
    ),
    # an address is read as CKAN too: record_hosts then refuses it (403) before asking
    ("https://169.254.169.254/dataset/x1", ("ckan", "169.254.169.254", "x1", None)),
    # git forges: a path is a repository's, whatever its segments are called
    (
        "https://github.com/dataset/tools",
        ("git", "https://github.com/dataset/tools", "HEAD", False),
    ),
    (
        "https://gitlab.com/dataset/tools",
        ("git", "https://gitlab.com/dataset/tools", "HEAD", False),
    ),
    (
        "https://codeberg.org/g/dataset/tools",
        ("git", "https://codeberg.org/g/dataset/tools", "HEAD", False),
    ),
    (
        "https://github.com/o/dataset/tree/main",
        ("git", "https://github.com/o/dataset", "main", True),
    ),
    # elsewhere: not CKAN's form, or not a name CKAN gives
    (
        "https://git.example.org/team/dataset",
        ("git", "https://git.example.org/team/dataset", "HEAD", False),
    ),
    (
        "https://git.example.org/dataset/tools.git",
        ("git", "https://git.example.org/dataset/tools", "HEAD", False),
    ),
    (
        "https://git.example.org/dataset/Tools",
        ("git", "https://git.example.org/dataset/Tools", "HEAD", False),
    ),
    (
        "https://git.example.org/dataset/tools/src/branch/main",
        ("git", "https://git.example.org/dataset/tools", "main", True),
    ),
    (
        "https://gitlab.example.org/dataset/tools/-/tree/main",
        ("git", "https://gitlab.example.org/dataset/tools", "main", True),
    ),
    (
        "https://demo.ckan.org/dataset/x1/resource/r1",
        ("git", "https://demo.ckan.org/dataset/x1/resource/r1", "HEAD", False),
    ),
    # ckan: says it is a CKAN, on any host
    (
        "ckan:https://github.com/dataset/tools",
        ("ckan", "github.com", "tools", None),
    ),
]


@pytest.mark.parametrize(("given", "expected"), CKAN_PAGES, ids=[given for given, _ in CKAN_PAGES])
def test_a_ckan_dataset_page_is_read_as_ckan_and_a_forge_page_as_git(
    given: str, expected: tuple[str | bool | None, ...]
) -> None:
    """BinderHub's ckan provider takes a dataset's page; so does a pasted URL, a DOI that
    leads to one, ``repos``: no setting is needed to read it as CKAN."""
    assert shape(parse_source(given)) == expected


REFUSED: list[tuple[str, str]] = [
    ("", "a repository URL, a record URL, a DOI or a SWHID"),
    ("   ", "a repository URL, a record URL, a DOI or a SWHID"),
    ("10.5281", "is not a DOI"),
    ("10.12/x", "is not a DOI"),
    ("doi:10.5281/zen odo", "spaces"),
    ("doi:10.5281/zen\u00e9odo", "is not a DOI"),
    ("https://doi.org/", "is not a DOI"),
    ("swh:1:dir:abc", "is not a SWHID"),
    (f"swh:2:dir:{SHA}", "is not a SWHID"),
    (f"swh:1:cnt:{SHA}", "give a directory (swh:1:dir:…) or a revision"),
    (f"swh:1:snp:{SHA}", "give a directory (swh:1:dir:…) or a revision"),
    ("https://zenodo.org/communities/x", "a Zenodo URL is https://zenodo.org/records/<record id>"),
    ("https://zenodo.org/records/abc", "a Zenodo URL is"),
    ("https://zenodo.org/doi/10.6084/m9.figshare.1", "a Zenodo URL is"),
    ("https://figshare.com/authors/x/1", "a Figshare URL is"),
    ("https://www.hydroshare.org/resource/xyz", "a HydroShare URL is"),
    ("https://dataverse.harvard.edu/dataset.xhtml?id=3", "a Dataverse URL is"),
    (
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/X&version=v2",
        "a Dataverse version is",
    ),
    ("https://data.example.org/dataset/xy?activity_id=nope", "a CKAN activity id is a UUID"),
    ("https://data.example.org/dataset/xy/history/nope", "a CKAN activity id is a UUID"),
    ("https://data.example.org/safe/../dataset/xy", "a CKAN path prefix is plain"),
    ("https://data.example.org/safe/%2E%2E/dataset/xy", "a CKAN path prefix is plain"),
    ("https://data.example.org/a%20b/dataset/xy", "a CKAN path prefix is plain"),
    ("ckan:https://data.example.org/dataset/xy/resource/r1", "is no CKAN dataset"),
    ("https://gist.github.com/user", "a gist is"),
    ("https://gist.github.com/user/0123456789abcdef0123/main2", "a gist's revision"),
    ("https://github.com/o/r/issues/3", "a GitHub URL is"),
    ("https://github.com/o/r/pull/x", "a GitHub URL is"),
    ("https://github.com/o/r/commit/xyz", "a GitHub URL is"),
    ("https://github.com/o/r/tree/", "a GitHub URL is"),
    ("https://gitlab.com/g/p/-/issues/3", "a GitLab page URL is"),
    ("https://github.com/o/r/tree/a..b", "a GitHub URL is"),
    ("https://git.example.org/r?x=1", "repo URL must not have a query or fragment"),
    ("https://user:pw@github.com/o/r", "repo URL must not carry credentials"),
    ("ftp://example.org/r", "repo URL scheme 'ftp' is not allowed"),
    ("https://exa mple.org/r", "spaces"),
]


@pytest.mark.parametrize(("given", "message"), REFUSED, ids=[given for given, _ in REFUSED])
def test_bad_input_is_refused_naming_the_form(given: str, message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as raised:
        parse_source(given)
    assert message in str(raised.value)
    assert status_for(raised.value) == 400


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.UnknownProvider("no provider 'x'"), 404),
        (errors.RecordNotFound("no record 1"), 422),
        (errors.RecordTooLarge("too large"), 422),
        (errors.HostNotHandled("example.org"), 422),
        (errors.ProviderUnavailable("zenodo.org did not answer"), 503),
    ],
)
def test_provider_errors_have_their_status(error: Exception, status: int) -> None:
    assert status_for(error) == status


def test_a_ref_given_apart() -> None:
    # a repository URL takes it, as before
    assert shape(parse_source("https://github.com/o/r", ref="dev")) == ("git", GH, "dev", False)
    assert shape(parse_source("gh/o/r/dev", ref="dev")) == ("git", GH, "dev", False)
    # a page that names a ref takes the same one only
    assert shape(parse_source("https://github.com/o/r/tree/dev", ref="dev")) == (
        "git",
        GH,
        "dev",
        True,
    )
    for named in ("https://github.com/o/r/tree/dev", "https://github.com/o/r/pull/7"):
        with pytest.raises(errors.InvalidRequest, match="give no ref, or the one it names"):
            parse_source(named, ref="main")
    with pytest.raises(errors.InvalidRequest, match="give no ref, or the one it names"):
        parse_source("10.5281/zenodo.1", ref="main")
    # a git repository whose URL reads as a CKAN dataset's page is told how to say so
    with pytest.raises(errors.InvalidRequest, match=r"a git repository there ends in \.git"):
        parse_source("https://git.example.org/dataset/tools", ref="main")
    assert shape(parse_source("https://git.example.org/dataset/tools.git", ref="main")) == (
        "git",
        "https://git.example.org/dataset/tools",
        "main",
        False,
    )
    with pytest.raises(errors.InvalidRequest, match="file:// repository URLs are not allowed"):
        parse_source("file:///srv/repo")
    assert shape(parse_source("file:///srv/repo", allow_file=True)) == (
        "git",
        "file:///srv/repo",
        "HEAD",
        False,
    )


def test_a_path_may_end_as_no_ref_may() -> None:
    assert shape(parse_source("https://github.com/o/r/blob/main/conda.lock")) == (
        "git",
        GH,
        "main/conda.lock",
        True,
    )


@pytest.mark.parametrize(
    ("rest", "candidates"),
    [
        ("main", ["main"]),
        (
            "release/1.0/docs/x.md",
            ["release/1.0/docs/x.md", "release/1.0/docs", "release/1.0", "release"],
        ),
        ("main/conda.lock", ["main"]),
        (
            "main/a/b/c/d/e/f/g/h/i",
            [
                "main/a/b/c/d/e/f/g",
                "main/a/b/c/d/e/f",
                "main/a/b/c/d/e",
                "main/a/b/c/d",
                "main/a/b/c",
                "main/a/b",
                "main/a",
                "main",
            ],
        ),
        ("-x/y", []),
    ],
)
def test_ref_candidates(rest: str, candidates: list[str]) -> None:
    assert ref_candidates(rest) == candidates


_PIECES = st.sampled_from(
    [
        "https://", "http://", "github.com/", "gitlab.com/", "codeberg.org/", "zenodo.org/",
        "figshare.com/", "doi.org/", "gist.github.com/", "www.hydroshare.org/", "swh:1:dir:",
        "10.5281/", "doi:", "o/", "r/", "-/", "tree/", "blob/", "pull/", "pulls/", "src/",
        "branch/", "tag/", "commit/", "records/", "articles/", "resource/", "dataset/",
        "history/", "dataset.xhtml?persistentId=doi:10.1/x", "&version=1.0", "?activity_id=",
        "7", "..", "%2F", "%", "#", ";", " ", "\udcff", "é", ":", "@", "a" * 40, HEX32, UUID,
    ]
)  # fmt: skip


@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=10).map("".join))
@example("https://github.com/o/r/tree/%")
@example("https://doi.org/%ff")
def test_anything_parses_or_is_refused_as_invalid(text: str) -> None:
    refused: errors.InvalidRequest | None = None
    try:
        source = parse_source(text)
    except errors.InvalidRequest as e:
        refused = e
    if refused is not None:
        assert str(refused)
        assert status_for(refused) == 400
        return
    assert isinstance(source, GitSource | RecordSource | DoiSource)
    assert parse_source(text) == source  # pure: the same answer again
