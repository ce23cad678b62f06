"""Repository URLs: one spelling per repository.

A repository URL is checked and made canonical once; from then on only the canonical
URL is used: matched against ``allowed_repos``, handed to git and repo2docker, hashed
into the image name. Two rules keep the checked string and what git fetches the same
repository (issue #12):

- every spelling that servers read alike becomes one string: percent-escapes of
  unreserved characters decoded, the other escapes in upper case, ``.`` and empty
  segments removed, default ports dropped, no trailing ``/`` or ``.git``;
- every spelling that servers read differently is refused: ``..`` segments (escaped or
  not), escaped ``/`` and ``\\``, ``;`` path parameters, double escapes (``%252E``),
  a query or fragment, non-ASCII or numeric-looking host names.

git and the servers behind it decode escapes (git itself for ``git://`` and
``ssh://``; nginx, Apache and the forges for HTTP), so escapes are where the two would
part. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import InvalidRequest

ALLOWED_SCHEMES = ("https", "http", "git", "ssh")
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}
MAX_REPO_LENGTH = 2048

# Hosts whose owner/name are case-insensitive: one repository, one image.
CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com"})

UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# Written as they are (RFC 3986 pchar without ';', which servers take for parameters).
_PATH_LITERAL = UNRESERVED | frozenset("!$&'()*+,=:@")
ESCAPE = re.compile(r"%(?P<hex>[0-9A-Fa-f]{2})")
_DOUBLE_ESCAPE = re.compile(r"%25[0-9A-Fa-f]{2}")
_HOST_LABEL = re.compile(r"^[a-z0-9_-]+$")
_USER = re.compile(r"^[A-Za-z0-9._-]+$")
SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")


def _segment(raw: str) -> str:
    """One path segment in canonical form; refuses what servers would read differently."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "%":
            match = ESCAPE.match(raw, i)
            if match is None:
                raise InvalidRequest("repo URL has a '%' that does not start a %XX escape")
            byte = int(match["hex"], 16)
            if byte == 0x2F:
                raise InvalidRequest("repo URL path must not contain an escaped '/' (%2F)")
            if byte == 0x5C:
                raise InvalidRequest("repo URL path must not contain an escaped '\\' (%5C)")
            if byte == 0x3B:
                raise InvalidRequest("repo URL path must not contain ';' (%3B)")
            if byte < 0x20 or byte == 0x7F:
                raise InvalidRequest("repo URL path must not contain escaped control characters")
            out.append(chr(byte) if chr(byte) in UNRESERVED else f"%{byte:02X}")
            i += 3
            continue
        if char == ";":
            raise InvalidRequest("repo URL path must not contain ';' (path parameters)")
        out.append(char if char in _PATH_LITERAL else quote(char, safe=""))
        i += 1
    segment = "".join(out)
    if _DOUBLE_ESCAPE.search(segment):
        raise InvalidRequest("repo URL path must not contain double escapes such as %252E")
    if len(segment) > 1 and not segment.strip("."):
        raise InvalidRequest(f"repo URL path must not contain '..' segments (found {raw!r})")
    return segment


def _strip_git_suffix(segments: list[str]) -> None:
    """Drop trailing ``.git`` (repeatedly, so the result is canonical too)."""
    while segments and segments[-1].endswith(".git"):
        last = segments.pop()[: -len(".git")]
        if len(last) > 1 and not last.strip("."):
            raise InvalidRequest("repo URL path must not contain '..' segments")
        if last not in ("", "."):
            segments.append(last)


def canonical_path(path: str, *, case_insensitive: bool = False) -> str:
    """The canonical form of a URL path: see the module docstring.

    Raises ``InvalidRequest`` naming the problem, ``"repo URL has no path"`` when
    nothing is left.
    """
    segments = [s for s in (_segment(raw) for raw in path.split("/")) if s not in ("", ".")]
    if case_insensitive:
        segments = [ESCAPE.sub(lambda m: m[0].upper(), s.lower()) for s in segments]
    _strip_git_suffix(segments)
    if not segments:
        raise InvalidRequest("repo URL has no path")
    return "/" + "/".join(segments)


def canonical_host(host: str) -> str:
    """A host name or IP address (without brackets or port), lower case.

    Refuses non-ASCII names (write the ``xn--`` form), escapes, empty labels and
    numbers that are not a plain dotted-quad IPv4 address (``127.1``, ``0x7f.1``:
    resolvers read them as addresses, so one host would have several spellings).
    """
    if not host.isascii():
        raise InvalidRequest("repo URL host must be ASCII; write an international name as xn--…")
    host = host.lower()
    if ":" in host:
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise InvalidRequest(f"repo URL host [{host}] is not an IPv6 address") from None
    host = host.removesuffix(".")
    labels = host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise InvalidRequest(f"repo URL host {host!r} is not a valid host name")
    last = labels[-1]
    if last.isdigit() or last.startswith("0x"):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
        if address is None or str(address) != host:
            raise InvalidRequest(f"repo URL host {host!r} must be a dotted-quad IPv4 address")
    return host


def _file_url(parts_path: str, netloc: str) -> str:
    path = unquote(parts_path).rstrip("/")
    if netloc not in ("", "localhost") or not path.startswith("/") or "/../" in f"{path}/":
        raise InvalidRequest("a file:// repo needs an absolute path without '..'")
    return f"file://{path}"


def _precheck(repo: str) -> str:
    """Checks on the whole string; SCP-like addresses become ``ssh://`` URLs."""
    if not isinstance(repo, str) or not repo:
        raise InvalidRequest("repo must be a non-empty string")
    if len(repo) > MAX_REPO_LENGTH:
        raise InvalidRequest(f"repo is longer than {MAX_REPO_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in repo):
        raise InvalidRequest("repo must not contain spaces or control characters")
    if repo.startswith("-"):
        raise InvalidRequest("repo must not start with '-'")
    if not repo.isascii():
        try:
            repo.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest("repo must be valid Unicode text") from None
    if "\\" in repo:
        raise InvalidRequest("repo URL must not contain '\\' (some servers read it as '/')")
    if "://" not in repo:
        match = SCP_LIKE.match(repo)
        if not match:
            raise InvalidRequest(
                "repo must be a URL (https://, http://, git://, ssh://) or user@host:path"
            )
        repo = f"ssh://{match['user'] or ''}{match['host']}/{match['path']}"
    return repo


def canonical_repo_url(repo: str, *, allow_file: bool = False) -> str:
    """Check a repository URL and return its canonical form (see the module docstring).

    Scheme and host are lower case, and for hosts in ``CASE_INSENSITIVE_HOSTS`` the
    path too. SCP-like SSH addresses (``git@host:owner/repo``) become ``ssh://`` URLs.
    Idempotent. Raises ``InvalidRequest`` naming the problem.
    """
    try:
        parts = urlsplit(_precheck(repo))
        hostname = parts.hostname
    except ValueError as e:
        raise InvalidRequest(f"repo URL cannot be parsed: {e}") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_file:
            raise InvalidRequest("file:// repository URLs are not allowed")
        return _file_url(parts.path, parts.netloc)
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidRequest(
            f"repo URL scheme {scheme or '(none)'!r} is not allowed; use one of "
            + ", ".join(ALLOWED_SCHEMES)
        )
    if "?" in repo or "#" in repo:
        raise InvalidRequest("repo URL must not have a query or fragment")
    if parts.password is not None or (parts.username is not None and scheme != "ssh"):
        raise InvalidRequest("repo URL must not carry credentials; configure them instead")
    if parts.username is not None and not _USER.match(parts.username):
        raise InvalidRequest("repo URL user name may only have letters, digits and ._-")
    if "%" in parts.netloc:
        raise InvalidRequest("repo URL host must not contain escapes")
    if not hostname:
        raise InvalidRequest("repo URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise InvalidRequest("repo URL port must be a number from 1 to 65535") from None
    if port == 0:
        raise InvalidRequest("repo URL port must be a number from 1 to 65535")
    host = canonical_host(hostname)
    path = canonical_path(parts.path, case_insensitive=host in CASE_INSENSITIVE_HOSTS)
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((scheme, netloc, path, "", ""))
