"""One repository, one spelling; ``allowed_repos`` checks what git fetches (issue #12)."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from jobs.errors import InvalidRequest
from jobs.naming import image_name_for
from jobs.settings import ConfigError, load_settings
from jobs.sources.patterns import canonical_pattern, url_matches
from jobs.sources.urls import canonical_repo_url

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("http://h.example/allowed/%72epo", "http://h.example/allowed/repo"),
        ("http://h.example/allowed/./repo", "http://h.example/allowed/repo"),
        ("http://h.example/allowed/%2E/repo", "http://h.example/allowed/repo"),
        ("http://h.example/allowed//repo//", "http://h.example/allowed/repo"),
        ("http://h.example/a/repo.git/", "http://h.example/a/repo"),
        ("http://h.example/a/repo/.git", "http://h.example/a/repo"),
        ("http://h.example/a/repo.git.git", "http://h.example/a/repo"),
        ("http://h.example/a/r%c3%a9po", "http://h.example/a/r%C3%A9po"),
        ("http://h.example/a/r\u00e9po", "http://h.example/a/r%C3%A9po"),
        ("http://h.example/a/b%20c", "http://h.example/a/b%20c"),
        ("http://h.example/a/b%2a", "http://h.example/a/b%2A"),
        ("http://h.example/~u/%7Er", "http://h.example/~u/~r"),
        ("https://h.example:443/x", "https://h.example/x"),
        ("http://h.example:80/x", "http://h.example/x"),
        ("http://h.example:0443/x", "http://h.example:443/x"),
        ("git://h.example:9418/x", "git://h.example/x"),
        ("ssh://git@h.example:22/x", "ssh://git@h.example/x"),
        ("https://h.example:/x", "https://h.example/x"),
        ("HTTPS://H.Example./X", "https://h.example/X"),
        ("http://[0:0::1]:8080/x", "http://[::1]:8080/x"),
        ("https://github.com/%4Fwner/Re%70o.GIT", "https://github.com/owner/repo"),
        ("https://10.0.0.1/x", "https://10.0.0.1/x"),
    ],
)
def test_canonical_spellings(given: str, canonical: str) -> None:
    assert canonical_repo_url(given) == canonical
    assert canonical_repo_url(canonical) == canonical


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("http://h.example/allowed/%2E%2E/private", "'..' segments"),
        ("http://h.example/allowed/%2e%2E/private", "'..' segments"),
        ("http://h.example/allowed/.%2e/private", "'..' segments"),
        ("http://h.example/allowed/../private", "'..' segments"),
        ("http://h.example/allowed/.../private", "'..' segments"),
        ("http://h.example/a/...git", "'..' segments"),
        ("http://h.example/allowed%2F..%2Fprivate", "escaped '/' (%2F)"),
        ("http://h.example/allowed%2f..%2fprivate", "escaped '/' (%2F)"),
        ("http://h.example/allowed/%252E%252E/private", "double escapes"),
        ("http://h.example/allowed/%25%32%45%25%32%45/private", "double escapes"),
        ("http://h.example/allowed\\..\\private", "'\\'"),
        ("http://h.example/allowed/%5C/x", "escaped '\\' (%5C)"),
        ("http://h.example/allowed/..;/private", "';'"),
        ("http://h.example/allowed/x%3B/y", "';' (%3B)"),
        ("http://h.example/a/%00x", "control characters"),
        ("http://h.example/a/%zz", "does not start a %XX escape"),
        ("http://h.example/a/b?", "query or fragment"),
        ("http://h.example/a/b#", "query or fragment"),
        ("http://user@h.example/a", "credentials"),
        ("ssh://us%65r@h.example/a", "user name"),
        ("http://h%2Eexample/a", "host must not contain escapes"),
        ("http://b\u00fccher.example/a", "must be ASCII"),
        ("http://127.1/a", "dotted-quad"),
        ("http://0x7f.0.0.1/a", "dotted-quad"),
        ("http://a..b/a", "not a valid host name"),
        ("http://h.example:99999/a", "port"),
        ("http://h.example:0/a", "port"),
        ("http://h.example:x/a", "port"),
        ("http://[::1/a", "cannot be parsed"),
        ("http://h.example/a/\ud800", "valid Unicode"),
        ("http://h.example/.git", "has no path"),
        ("http://h.example//./", "has no path"),
    ],
)
def test_spellings_that_could_fetch_elsewhere_are_refused(given: str, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(problem)):
        canonical_repo_url(given)


@pytest.mark.parametrize(
    ("pattern", "canonical"),
    [
        ("*", "*"),
        ("HTTPS://GitHub.com/My-Org/*", "https://github.com/my-org/*"),
        ("https://h.example:443/team/", "https://h.example/team"),
        ("https://h.example/team/*.git", "https://h.example/team/*"),
        ("https://h.example/%74eam/./*", "https://h.example/team/*"),
        ("git@github.com:Org/*", "ssh://git@github.com/org/*"),
        ("https://*.example.org/[a-c]?/*", "https://*.example.org/[a-c]?/*"),
    ],
)
def test_patterns_are_spelled_as_canonical_urls(pattern: str, canonical: str) -> None:
    assert canonical_pattern(pattern) == canonical
    assert load_settings(None, allowed_repos=[pattern]).allowed_repos == [canonical]


def test_a_pattern_without_a_path_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"allowed_repos: .*needs a path"):
        load_settings(None, allowed_repos=["https://github.com"])


def test_configured_repos_are_canonical_too() -> None:
    """Webhooks and the reconciler use ``repos[].url``: the same identity as requests."""
    settings = load_settings(None, repos=[{"url": "HTTPS://h.example:443/a/./%72epo.git/"}])
    assert settings.repos[0].url == "https://h.example/a/repo"
    with pytest.raises(ConfigError, match=r"repos\.0\.url: .*'\.\.' segments"):
        load_settings(None, repos=[{"url": "https://h.example/a/%2E%2E/b"}])


@pytest.mark.parametrize(
    ("url", "pattern", "matches"),
    [
        ("http://h.example/allowed/repo", "http://h.example/allowed/*", True),
        ("http://h.example/allowed/a/b", "http://h.example/allowed/*", True),
        ("http://h.example/private", "http://h.example/allowed/*", False),
        ("https://a.example.org/x", "https://*.example.org/*", True),
        ("https://evil.test/x.example.org/y", "https://*.example.org/*", False),
        ("https://h.example/x", "*", True),
        ("file:///srv/x", "file:///srv/*", True),
    ],
)
def test_url_matches(url: str, pattern: str, matches: bool) -> None:
    assert url_matches(url, pattern) is matches


# -- properties ----------------------------------------------------------------------

UNRESERVED = "abcXYZ019-._~"
PATTERNS = ["http://h.example/allowed/*", "http://h.example/allowed/repo", "*"]


def served_path(url: str) -> str:
    """What an HTTP server reads from a URL git sends: the path decoded once, dot
    segments resolved (RFC 3986 §5.2.4, as nginx and Apache do), ``//`` merged, and
    (as git http-backend and the forges do) a trailing ``/`` or ``.git`` ignored."""
    path = re.sub("/+", "/", "/" + unquote(urlsplit(url).path))
    while (shorter := posixpath.normpath(path).removesuffix(".git")) != path:
        path = shorter
    return path


segment_piece = st.one_of(
    st.sampled_from(["a", "r", "e", "p", "o", ".", "-", "_", "~", "7", "allowed", "private"]),
    st.sampled_from(["%2E", "%2e", "%72", "%41", "%2F", "%25", "%252E", "%5C", ";", "\\"]),
    st.sampled_from(["%20", "%C3%A9", "%c3%a9", "+", "@", ":", "%3a", "é"]),
)
whole_segment = st.sampled_from(
    ["allowed", "repo", "private", "", ".", "..", "%2E", "%2E%2E", "%2e%2E", ".%2e", "%252E%252E"]
)
segment = st.one_of(whole_segment, st.lists(segment_piece, max_size=4).map("".join))
raw_urls = st.builds(
    lambda scheme, host, port, first, segments, tail: (
        f"{scheme}://{host}{port}/{first}" + "/".join(segments) + tail
    ),
    st.sampled_from(["http", "HTTP", "Http"]),
    st.sampled_from(["h.example", "H.EXAMPLE", "h.Example."]),
    st.sampled_from(["", "", ":80", ":080", ":8080"]),
    st.sampled_from(["allowed/", "allowed/", "allowed%2F", "%61llowed/", ""]),
    st.lists(segment, min_size=1, max_size=4),
    st.sampled_from(["", "/", ".git", ".git/", "/.git"]),
)


@given(raw_urls)
@example("http://h.example/allowed/%2E%2E/private")
def test_what_is_checked_is_what_is_fetched(url: str) -> None:
    """(a) Canonical is idempotent, names the resource the URL as given names, and a
    URL admitted by a pattern is fetched from under that pattern's path."""
    try:
        canonical = canonical_repo_url(url)
    except InvalidRequest:
        return
    assert canonical_repo_url(canonical) == canonical
    assert served_path(canonical) == served_path(url)
    assert urlsplit(canonical).port in (None, 8080)
    for pattern in PATTERNS:
        if url_matches(canonical, canonical_pattern(pattern)):
            # what git fetches is the canonical URL; what the server reads from it
            assert url_matches(f"http://h.example{served_path(canonical)}", pattern)
            assert url_matches(canonical_repo_url(canonical), pattern)


def _spell(char: str, how: str) -> str:
    return {"as is": char, "%xx": f"%{ord(char):02x}", "%XX": f"%{ord(char):02X}"}[how]


repo_paths = st.lists(
    st.text(alphabet=UNRESERVED, min_size=1, max_size=6).filter(
        lambda s: s.strip(".") != "" and not s.endswith(".git")
    ),
    min_size=1,
    max_size=3,
)


@given(repo_paths, st.data())
def test_spellings_of_one_repository_give_one_image(path: list[str], data: st.DataObject) -> None:
    """(b) Case of scheme and host, escapes of unreserved characters, ``.`` segments,
    a trailing ``/`` or ``.git`` and the default port do not change the image."""
    plain = "http://h.example/" + "/".join(path)
    spelled_segments: list[str] = []
    for part in path:
        if data.draw(st.booleans()):
            spelled_segments.append(data.draw(st.sampled_from([".", "%2E", "%2e", ""])))
        hows = st.sampled_from(["as is", "%xx", "%XX"])
        spelled_segments.append("".join(_spell(char, data.draw(hows)) for char in part))
    scheme = data.draw(st.sampled_from(["http", "HTTP", "hTTp"]))
    host = data.draw(st.sampled_from(["h.example", "H.EXAMPLE", "h.example."]))
    port = data.draw(st.sampled_from(["", ":80", ":0080"]))
    tail = data.draw(st.sampled_from(["", "/", ".git", ".git/", "//"]))
    spelled = f"{scheme}://{host}{port}/" + "/".join(spelled_segments) + tail
    image = image_name_for("r.example/", canonical_repo_url(plain), SHA)
    assert image_name_for("r.example/", canonical_repo_url(spelled), SHA) == image
