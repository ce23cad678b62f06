"""BinderHub's provider specs (jobs/sources/providers.py): what each provider's spec
means, and the errors (with the stream's status) for malformed specs and unknown
providers."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import pytest

from jobs import errors
from jobs.coordinator.build_requests import body_request
from jobs.sources.forms import parse_source
from jobs.sources.providers import PROVIDERS, repo_spec_for, spec_form, stream_request
from jobs.sources.records import GitSource, RecordSource
from jobs.sources.specs import RepoSpec
from webhook.binderhub import error_event
from webhook.repo_providers import repo_providers

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("provider", "spec", "expected"),
    [
        (
            "gh",
            "binder-examples/requirements/HEAD",
            ("github.com/binder-examples/requirements", "HEAD"),
        ),
        ("gh", "o/r/feature/x", ("github.com/o/r", "feature/x")),
        ("gh", "o/r/feature%2Fx", ("github.com/o/r", "feature/x")),
        ("gh", "O.x/r_1-2/v1.0", ("github.com/O.x/r_1-2", "v1.0")),
        ("gl", "group%2Fproject/main", ("gitlab.com/group/project", "main")),
        ("gl", "group%2Fsub%2Fproject/release%2F1", ("gitlab.com/group/sub/project", "release/1")),
        (
            "git",
            "https%3A%2F%2Fgit.example.org%2Fteam%2Frepo.git/main",
            ("git.example.org/team/repo.git", "main"),
        ),
        ("git", "git%3A%2F%2F127.0.0.1%3A9418%2Fdemo/" + SHA, ("127.0.0.1:9418/demo", SHA)),
        ("git", "git%40host.example%3Ateam%2Frepo/main", ("git@host.example:team/repo", "main")),
    ],
)
def test_provider_specs(provider: str, spec: str, expected: tuple[str, str]) -> None:
    parsed = repo_spec_for(provider, spec)
    assert (parsed.url.split("://")[-1], parsed.ref) == expected
    assert isinstance(parsed, RepoSpec)


@pytest.mark.parametrize(
    ("provider", "spec", "message"),
    [
        ("gh", "owner/repo", "gh/<owner>/<repo>/<ref>"),
        ("gh", "owner/repo/", "gh/<owner>/<repo>/<ref>"),
        ("gh", "owner%2Frepo/x/main", "gh/<owner>/<repo>/<ref>"),
        ("gh", "own er/repo/main", "gh/<owner>/<repo>/<ref>"),
        ("gh", "", "gh/<owner>/<repo>/<ref>"),
        ("gl", "group/project/main", "gl/<URL-escaped namespace>/<ref>"),
        ("gl", "group%2Fproject", "gl/<URL-escaped namespace>/<ref>"),
        ("git", "https://example.org/repo/main", "git/<URL-escaped repository URL>/<ref>"),
        ("git", "https%3A%2F%2Fexample.org%2Frepo", "git/<URL-escaped repository URL>/<ref>"),
        ("git", "not-a-url/main", "git/<URL-escaped repository URL>/<ref>"),
    ],
)
def test_malformed_specs_are_invalid_requests(provider: str, spec: str, message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as raised:
        repo_spec_for(provider, spec)
    assert message in str(raised.value)
    assert error_event(raised.value)["status_code"] == 400


@pytest.mark.parametrize("provider", ["bitbucket", "ZENODO", "GIST", "GH", ""])
def test_unknown_providers_are_404(provider: str) -> None:
    with pytest.raises(errors.UnknownProvider) as raised:
        repo_spec_for(provider, "a/b/c")
    assert error_event(raised.value) == {
        "phase": "failed",
        "status_code": 404,
        "message": f"no provider {provider!r}: this service builds from "
        "gh, gl, git, gist, zenodo, figshare, dataverse, hydroshare, ckan, swh\n",
    }


GIST = "0123456789abcdef0123"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (f"user/{GIST}", RepoSpec(f"https://gist.github.com/{GIST}", "HEAD")),
        (f"user/{GIST}/HEAD", RepoSpec(f"https://gist.github.com/{GIST}", "HEAD")),
        (f"user/{GIST}/main", RepoSpec(f"https://gist.github.com/{GIST}", "main")),
        (f"user/{GIST}/{SHA}", RepoSpec(f"https://gist.github.com/{GIST}", SHA)),
    ],
)
def test_gist_specs(spec: str, expected: RepoSpec) -> None:
    assert repo_spec_for("gist", spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (GIST, "a gist spec is gist/<user>/<id>[/<ref>]"),
        (f"user/{GIST}/main/x", "a gist spec is gist/<user>/<id>[/<ref>]"),
        ("user/not-a-gist", "a gist is https://gist.github.com/<user>/<id>"),
        (f"user/{GIST}/dev", "a gist's revision is its 40-digit commit SHA or HEAD"),
    ],
)
def test_malformed_gist_specs(spec: str, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=re.escape(message)):
        repo_spec_for("gist", spec)


def test_every_provider_is_offered_to_binderhub_s_ui() -> None:
    assert [provider["id"] for provider in repo_providers()] == list(PROVIDERS)


@pytest.mark.parametrize(
    ("spec", "repo"),
    [
        ("10.5281/zenodo.3242074", "10.5281/zenodo.3242074"),
        ("10.5281%2Fzenodo.3242074", "10.5281/zenodo.3242074"),
        ("https%3A%2F%2Fzenodo.org%2Frecords%2F3242074", "https://zenodo.org/records/3242074"),
        ("10.1234/any.doi", "10.1234/any.doi"),  # where it leads is known once followed
    ],
)
def test_zenodo_specs_are_asked_as_records_without_a_ref(spec: str, repo: str) -> None:
    assert stream_request("zenodo", spec) == (repo, None)


@pytest.mark.parametrize(
    "spec",
    [
        "https%3A%2F%2Fgithub.com%2Fo%2Fr",  # a git repository
        "10.6084/m9.figshare.9782777",  # another provider's DOI
        "swh:1:dir:" + "0" * 40,
        "10.5281/",  # no suffix
        "",
    ],
)
def test_zenodo_specs_that_name_no_zenodo_record_are_400(spec: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=r"a zenodo spec is zenodo/<DOI or record"):
        stream_request("zenodo", spec)


@pytest.mark.parametrize(
    ("spec", "repo"),
    [
        ("10.6084/m9.figshare.9782777.v1", "10.6084/m9.figshare.9782777.v1"),
        ("https%3A%2F%2Ffigshare.com%2Farticles%2Fdataset%2Fx%2F9782777", None),
    ],
)
def test_figshare_specs_are_asked_as_records_without_a_ref(spec: str, repo: str | None) -> None:
    assert stream_request("figshare", spec) == (repo or unquote(spec), None)
    with pytest.raises(errors.InvalidRequest, match=r"a zenodo spec is zenodo/"):
        stream_request("zenodo", spec)


def test_git_specs_of_the_stream_are_their_url_and_ref() -> None:
    assert stream_request("gh", "o/r/main") == ("https://github.com/o/r", "main")


SWHID = "swh:1:rev:" + "ab" * 20


@pytest.mark.parametrize(
    "spec",
    [SWHID, SWHID.replace(":", "%3A"), f"{SWHID};origin=https://github.com/o/r", f"{SWHID}/"],
)
def test_swh_specs_are_asked_as_their_swhid_without_a_ref(spec: str) -> None:
    assert stream_request("swh", spec.rstrip("/")) == (SWHID, None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("swh:1:rev:abc", r"is not a SWHID: it is swh:1:<type>:<40 hex digits>"),
        ("10.5281/zenodo.3242074", r"is not a SWHID"),
        ("swh:1:cnt:" + "0" * 40, r"names a cnt: give a directory \(swh:1:dir:…\) or a revision"),
        ("", r"is not a SWHID"),
    ],
)
def test_swh_specs_that_are_no_swhid_of_a_directory_or_revision_are_400(
    spec: str, message: str
) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        stream_request("swh", spec)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_offered_says_its_spec_form_with_an_example_that_builds(
    provider: str,
) -> None:
    [shown] = [shown for shown in repo_providers() if shown["id"] == provider]
    assert shown["spec"] == spec_form(provider)
    assert shown["spec"]["form"].startswith(f"{provider}/")
    prefix, _, spec = shown["spec"]["example"].partition("/")
    assert prefix == provider
    repo, ref = stream_request(provider, spec)  # the example is of the form
    assert body_request(provider=provider, spec=spec) == (repo, ref)
    assert parse_source(repo, ref=ref) is not None


def test_the_git_provider_reads_a_url_of_ckan_s_path_form_as_git() -> None:
    """A pasted ``https://<host>/dataset/<name>`` is a CKAN dataset's page; given to the
    ``git`` provider it is a git repository, at the ref the spec names."""
    for url in ("https://git.example.org/dataset/tools", "https://git.example.org/a/b"):
        repo, ref = stream_request("git", quote(url, safe="") + "/main")
        source = parse_source(repo, ref=ref)
        assert isinstance(source, GitSource)
        assert (source.spec.url, source.spec.ref) == (url, "main")


def test_the_git_provider_keeps_a_url_that_names_mercurial_as_mercurial() -> None:
    """``hg+https://…`` names its kind itself: through the stream's ``git`` provider (the
    stream has no Mercurial provider) it is the Mercurial repository, not ``….git``."""
    url = "hg+https://hg.example.org/team/analysis"
    repo, ref = stream_request("git", quote(url, safe="") + "/default")
    source = parse_source(repo, ref=ref)
    assert isinstance(source, RecordSource)
    assert (source.provider, source.record) == ("hg", "https://hg.example.org/team/analysis")
