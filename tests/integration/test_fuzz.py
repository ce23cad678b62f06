"""No input answers 5xx, records anything or starts a build (issue 20): Hypothesis sends
a real ``binderhub-service serve`` requests made from its OpenAPI document, every
route and method of it, over a raw socket (so that paths, headers and bodies can be
anything a client can send, not only what an HTTP library agrees to), and webhook
deliveries made from the recorded ones in tests/fixtures/webhooks, mutated and then
signed with the service's secret so that they reach the payload parser.

Inputs include malformed Unicode (lone surrogates as ``\\ud800`` escapes, as raw bytes
and percent-escaped; overlong forms; NUL; non-characters; byte order marks; digits that
are not ASCII), JSON nested far deeper than the interpreter's recursion limit,
oversize bodies, wrong content types and garbage headers. After every request: no 5xx
(nor a 5xx ``status_code`` inside an event stream), no build in the state file, and no
delivery recorded for a refused one. After all of them: no traceback in the log.

The number of examples is bounded (``EXAMPLES``) and the run derandomized, so that it is
the same in every ``make test``; the known cases are always sent (``@example``).
"""

from __future__ import annotations

import copy
import json
import re
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from testkit.components import GitServer, ServiceProcess
from tests.conftest import WEBHOOK_FIXTURES
from webhook.deliveries import github_signature

StartServer = Callable[..., ServiceProcess]

EXAMPLES = {"routes": 1000, "github": 600, "gitlab": 400}
"""Examples per property: about 25 s for all three on 2 cores (measured, see the
report of issue 20); raise them locally to search harder."""

GITHUB_SECRET = "fuzz github secret"
GITLAB_TOKEN = "fuzz gitlab token"
MAX_BODY = 64 * 1024
BUILD_ID = "0123456789abcdef0123456789abcdef"

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)

# -- text that breaks parsers -------------------------------------------------------

NASTY = [
    "\x00",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "\u202e",
    "\xb2",
    "\u0661",
    "\xe9",
    "%",
    "%00",
    "%ff",
    "%C0%AF",
    "%ED%A0%80",
    "%2F",
    "%2e%2e",
    "%252e",
    "..",
    "/",
    "\\",
    "?",
    "#",
    "-",
    "--upload-pack=touch /tmp/x",
    "refs/heads/main",
    "HEAD",
    "a" * 300,
]
"""Fragments known to trip decoders and validators."""

characters = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates: not in st.characters() by default
    st.sampled_from("\x00\x7f\x80\xff/%\\.:@?#&=+; \t"),
)
nasty_text = st.lists(st.one_of(st.text(characters, max_size=12), st.sampled_from(NASTY))).map(
    "".join
)


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates included (as their three bytes)."""
    return text.encode("utf-8", "surrogatepass")


def path_segment(text: str, raw: bool) -> bytes:
    """``text`` for a request path: percent-escaped (the escapes themselves kept when
    ``raw``, and every byte above 0x7f sent as it is)."""
    data = utf8(text)
    if raw:
        return bytes(b if 0x21 <= b < 0x7F or b >= 0x80 else ord("_") for b in data)
    return quote(data, safe="").encode()


def deep_json(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        nasty_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(nasty_text, children, max_size=4)
    ),
    max_leaves=12,
)


def dump(value: Any, ascii_escapes: bool) -> bytes:
    """``value`` as JSON: lone surrogates as ``\\ud800`` escapes, or as raw bytes."""
    if ascii_escapes:
        return json.dumps(value, ensure_ascii=True).encode()
    return utf8(json.dumps(value, ensure_ascii=False))


@st.composite
def bodies(draw: st.DrawFn, shaped: Callable[[st.DrawFn], Any] | None = None) -> bytes:
    """A request body: ``shaped`` JSON (near what the route reads), any JSON, JSON nested
    deep, bytes that are no JSON or no UTF-8, or JSON with NaN or huge numbers."""
    roll = percent(draw)
    kind = "shaped" if roll < 60 else ["any", "deep", "bytes", "tokens"][roll % 4]
    if kind == "shaped" and shaped is not None:
        return dump(shaped(draw), draw(st.booleans()))
    if kind == "deep":
        depth = draw(st.sampled_from([63, 64, 65, 999, 1000, 5000, 100_000]))
        return deep_json(depth, draw(st.sampled_from(["array", "object"])))
    if kind == "bytes":
        return draw(
            st.one_of(
                st.binary(max_size=64),
                st.sampled_from([b"", b"\xef\xbb\xbf{}", b'{"repo": "\xc0\xaf"}', b"\xff"]),
                st.just(b'{"a": "' + b"x" * (MAX_BODY + 10) + b'"}'),
            )
        )
    if kind == "tokens":
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000]))
        return f'{{"repo": {token}, "ref": [{token}]}}'.encode()
    return dump(draw(json_values), draw(st.booleans()))


def build_request(draw: st.DrawFn) -> Any:
    """A body like ``BuildRequest``: repo, ref, force and what else, any values."""
    value: dict[str, Any] = {}
    for name, plausible in [
        ("repo", st.sampled_from(["https://github.com/o/r", "git://127.0.0.1:1/r", "gh/o/r/m"])),
        ("ref", st.sampled_from(["main", "HEAD", "a" * 40, "refs/heads/x"])),
        ("force", st.booleans()),
    ]:
        if draw(st.booleans()):
            value[name] = draw(st.one_of(plausible, nasty_text, json_values))
    if draw(st.integers(0, 5)) == 0:
        value[draw(nasty_text)] = draw(json_values)
    return value


# -- requests from the OpenAPI document ----------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[tuple[str, str], ...]
    """(name, where) of each parameter: path or query."""
    has_body: bool


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            params = [*shared, *operation.get("parameters", [])]
            found.append(
                Operation(
                    method.upper(),
                    path,
                    tuple((p["name"], p["in"]) for p in params),
                    "requestBody" in operation,
                )
            )
    return found


PLAUSIBLE_PARAMS: dict[str, list[str]] = {
    "build_id": [BUILD_ID, BUILD_ID + "\n", BUILD_ID.upper()],
    "provider": ["gh", "gl", "git", "GH", "zenodo", ""],
    "spec": ["o/r/main", "o/r", "g%2Fp/main", "git%3A%2F%2F127.0.0.1%3A1%2Fr/main", ""],
    "forge": ["github", "gitlab", "bitbucket", "a/b", ""],
    "state": ["queued", "built", "nope"],
    "limit": ["1", "200", "201", "0", "\xb2", "\u0661", "-1", "1e3"],
    "cursor": [BUILD_ID, "x"],
    "follow": ["true", "false", "TRUE", "1"],
    "build_only": ["true", "true", "True", "false", ""],
    "repo": ["https://github.com/o/r", "git://127.0.0.1:1/r"],
}


class Request:
    """One HTTP request; its repr (what Hypothesis prints for a failing example) cuts
    the body at 300 bytes. Not a dataclass: Hypothesis prints those field by field."""

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers or []
        self.body = body

    def __repr__(self) -> str:
        head = b"\r\n".join(b"%s: %s" % pair for pair in self.headers)
        body = self.body[:300] + (b"..." if len(self.body) > 300 else b"")
        return f"Request({self.method} {self.target!r} headers={head!r} body={body!r})"


def percent(draw: st.DrawFn) -> int:
    """0 to 99: how the strategies below weigh their choices (Hypothesis shrinks it to 0,
    the most ordinary choice)."""
    return draw(st.integers(0, 99))


header_text = nasty_text.map(
    lambda t: bytes(b for b in utf8(t) if (b >= 0x20 and b != 0x7F) or b == 0x09)[:200]
)
"""Any text a header may carry (obs-text included): UTF-8 or not, surrogates too."""
garbage = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
"""Bytes no header may carry (NUL, controls): the HTTP parser's to refuse."""


@st.composite
def header_values(draw: st.DrawFn, token: str, stream: bool) -> list[tuple[bytes, bytes]]:
    """Headers: Authorization (mostly ours; someone else's, any text, garbage or none),
    Accept (an event stream for the BinderHub stream), Content-Type, and now and then
    a cookie, a request id, any other header, or garbage in one of them."""
    headers: list[tuple[bytes, bytes]] = []
    auth = percent(draw)
    if auth < 70:
        headers.append((b"Authorization", f"Bearer {token}".encode()))
    elif auth < 75:
        headers.append((b"Authorization", f"token {token}".encode()))
    elif auth < 90:
        headers.append(
            (
                b"Authorization",
                draw(st.sampled_from([b"Bearer ", b"", b"Basic "])) + draw(header_text),
            )
        )
    elif auth < 95:
        headers.append((b"Authorization", draw(garbage)))
    accept = percent(draw)
    if (stream and accept < 80) or accept < 10:
        headers.append((b"Accept", b"text/event-stream"))
    elif accept < 90:
        headers.append((b"Accept", draw(header_text)))
    kind = percent(draw)
    if kind < 80:
        headers.append((b"Content-Type", b"application/json"))
    elif kind < 90:
        headers.append((b"Content-Type", draw(header_text)))
    for name in (b"Cookie", b"X-Request-Id", b"X-Anything"):
        chance = percent(draw)
        if chance < 10:
            headers.append((name, draw(header_text)))
        elif chance < 12:
            headers.append((name, draw(garbage)))
    return headers


@st.composite
def api_requests(draw: st.DrawFn, ops: list[Operation], token: str) -> Request:
    op = draw(st.sampled_from(ops))
    method = op.method if percent(draw) >= 5 else draw(st.sampled_from(["PUT", "PATCH"]))
    path = op.path.encode()
    query: list[bytes] = []
    raw = percent(draw) < 10  # bytes above 0x7f unescaped, escapes as they are
    for name, where in op.parameters:
        plausible = PLAUSIBLE_PARAMS.get(name, ["x"])
        value = draw(st.sampled_from(plausible)) if percent(draw) < 60 else draw(nasty_text)
        if where == "path":
            segment = value.encode() if value in plausible else path_segment(value, raw)
            path = path.replace(b"{" + name.encode() + b"}", segment or b"x")
        elif percent(draw) < 60:
            query.append(path_segment(name, False) + b"=" + path_segment(value, raw))
    if percent(draw) < 10:  # repeated and unknown parameters
        query.append(path_segment(draw(nasty_text), raw) + b"=" + path_segment("1", raw))
    if percent(draw) < 5:
        path += path_segment(draw(nasty_text), raw)
    target = path + (b"?" + b"&".join(query) if query else b"")
    headers = draw(header_values(token, op.path.startswith("/build/")))
    body = b""
    if op.has_body or percent(draw) < 5:
        body = draw(bodies(build_request if op.path == "/api/v1/builds" else None))
    return Request(method, target, headers, body)


# -- signed webhook deliveries --------------------------------------------------------

GITHUB_FIXTURES = sorted(WEBHOOK_FIXTURES.glob("github-*.json"))
GITLAB_FIXTURES = sorted(WEBHOOK_FIXTURES.glob("gitlab-*.json"))


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys and indexes)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from json_paths(child, (*prefix, index))


def _follow(data: Any, steps: list[Any]) -> Any:
    """What ``steps`` lead to inside ``data``, or None where an earlier mutation left
    them nowhere."""
    for step in steps:
        if isinstance(data, dict) and isinstance(step, str):
            data = data.get(step)
        elif isinstance(data, list) and isinstance(step, int) and step < len(data):
            data = data[step]
        else:
            return None
    return data


@st.composite
def mutated(draw: st.DrawFn, fixtures: list[Path], repo_url: str) -> Any:
    """A recorded delivery about ``repo_url`` (a configured repository, so that the
    ref selection is reached) with some of its values replaced or deleted."""
    data = json.loads(draw(st.sampled_from(fixtures)).read_text())
    data = copy.deepcopy(data)
    for section in ("repository", "project"):
        if isinstance(data.get(section), dict) and percent(draw) < 70:
            for name in ("clone_url", "html_url", "git_http_url", "web_url", "homepage"):
                if name in data[section]:
                    data[section][name] = repo_url
    paths = list(json_paths(data))
    for _ in range(draw(st.integers(0, 4))):
        *steps, key = draw(st.sampled_from(paths))
        parent = _follow(data, steps)
        replacement = draw(
            st.one_of(
                json_values,
                st.sampled_from(["0" * 40, "a" * 40, "refs/heads/main", "refs/tags/v1", None]),
            )
        )
        if isinstance(parent, dict) and isinstance(key, str):
            if draw(st.integers(0, 3)) == 0:
                parent.pop(key, None)
            else:
                parent[key] = replacement
        elif isinstance(parent, list) and isinstance(key, int) and key < len(parent):
            parent[key] = replacement
    return data


@st.composite
def deliveries(draw: st.DrawFn, provider: str, repo_url: str) -> Request:
    """A delivery, signed (GitHub) or with the token (GitLab)."""
    if provider == "github":
        fixtures = GITHUB_FIXTURES
        events = ["push", "push", "push", "ping", "create", "issues"]
    else:
        fixtures = GITLAB_FIXTURES
        events = ["Push Hook", "Tag Push Hook", "System Hook", "Merge Request Hook"]
    event = draw(st.sampled_from(events)) if percent(draw) < 90 else draw(nasty_text)[:50]
    body = draw(bodies(lambda d: d(mutated(fixtures, repo_url))))
    roll = percent(draw)
    delivery = str(draw(st.uuids())) if roll < 80 else None if roll < 90 else draw(nasty_text)[:60]
    roll = percent(draw)
    content_type = [b"application/json; charset=utf-8", b"text/plain"][roll % 2]
    if roll < 90:
        content_type = b"application/json"
    return delivery_request(provider, event, body, delivery, content_type)


def delivery_request(
    provider: str, event: str, body: bytes, delivery: str | None, content_type: bytes
) -> Request:
    headers: list[tuple[bytes, bytes]] = [(b"Content-Type", content_type)]
    if provider == "github":
        headers += [
            (b"X-GitHub-Event", utf8(event)),
            (b"X-Hub-Signature-256", github_signature(GITHUB_SECRET.encode(), body).encode()),
        ]
        if delivery is not None:
            headers.append((b"X-GitHub-Delivery", utf8(delivery)))
    else:
        headers += [(b"X-Gitlab-Event", utf8(event)), (b"X-Gitlab-Token", GITLAB_TOKEN.encode())]
        if delivery is not None:
            headers.append((b"Idempotency-Key", utf8(delivery)))
    headers = [(k, v.replace(b"\r", b"").replace(b"\n", b"")) for k, v in headers]
    return Request("POST", f"/hooks/{provider}".encode(), headers, body)


# -- sending, and what must hold after each request ------------------------------------


def send(port: int, request: Request) -> tuple[int, bytes] | None:
    """``request`` as HTTP/1.1 bytes on a new connection; (status, body) of the answer,
    read to the end (``Connection: close``). None when the server reset the connection
    before an answer could be read: it may answer (405, 413, …) and close without
    reading a body, and the unread body turns its close into a reset."""
    head = [
        b"%s %s HTTP/1.1" % (request.method.encode(), request.target),
        b"Host: 127.0.0.1:%d" % port,
        b"Connection: close",
        b"Content-Length: %d" % len(request.body),
        *(b"%s: %s" % header for header in request.headers),
    ]
    chunks = []
    with closing(socket.create_connection(("127.0.0.1", port), timeout=60)) as sock:
        try:
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + request.body)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            if not chunks:
                return None
    answer = b"".join(chunks)
    status_line, _, rest = answer.partition(b"\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", status_line)
    assert match, f"no HTTP answer: {answer[:200]!r}"
    return int(match.group(1)), rest.partition(b"\r\n\r\n")[2]


def readiness(target: bytes, status: int) -> bool:
    """Whether ``status`` is /health/ready's 503: a dependency that did not answer in
    time on a loaded machine, which no input causes (and which a test must not fail on)."""
    return status == 503 and target.partition(b"?")[0] == b"/health/ready"


def server_errors(log: str) -> list[str]:
    """The access-log lines of 5xx answers in ``log``, but /health/ready's 503."""
    return [
        line
        for line in log.splitlines()
        if re.search(r'"status": 5\d\d', line)
        and '"path": "/health/ready", "status": 503' not in line
    ]


class Witness:
    """What must not change: the builds and the deliveries in the state file; and what
    must not appear in the service's log: an answer of 5xx (the access log has every
    answer, those the socket could not read too) or a traceback."""

    def __init__(self, server: ServiceProcess) -> None:
        found = re.search(r"state_path: (.*)\n", server.config.read_text())
        assert found is not None
        self.path = found.group(1)
        self.server = server
        self.log_read = 0

    def counts(self) -> tuple[int, int]:
        with closing(sqlite3.connect(self.path)) as db:
            builds = db.execute("SELECT COUNT(*) FROM builds").fetchone()[0]
            recorded = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        return int(builds), int(recorded)

    def new_log(self) -> str:
        with self.server.log_path.open("rb") as log:
            log.seek(self.log_read)
            text = log.read()
        self.log_read += len(text)
        return text.decode(errors="replace")

    def check(self, request: Request) -> None:
        """Send ``request`` and hold the service to the properties above. Failures name
        the request (Hypothesis prints composite examples empty under pytest)."""
        before = self.counts()
        answer = send(self.server.port, request)
        if answer is not None:
            status, body = answer
            assert status < 500 or readiness(request.target, status), (
                f"{request!r} answered {status}: {body[:500]!r}"
            )
            assert not re.search(rb'"status_code":\s*5\d\d', body), f"{request!r}: {body[:500]!r}"
        builds, recorded = self.counts()
        assert builds == 0, f"{request!r} recorded a build"
        if answer is None or answer[0] >= 400:
            assert recorded == before[1], f"{request!r} was refused but recorded"
        log = self.new_log()
        assert not server_errors(log), f"{request!r}: {log[-3000:]}"
        assert "Traceback" not in log, f"{request!r}: {log[-5000:]}"


@pytest.fixture
def fuzzed(git_server: GitServer, start_server: StartServer, unique: str) -> Iterator[Witness]:
    """A server whose only configured repository builds no ref (so that no delivery may
    legitimately build), with webhooks on and a small body cap; only the local git
    server is allowed, so that no request reaches beyond this machine."""
    server = start_server(
        allowed_repos=[f"git://127.0.0.1:{git_server.port}/*"],
        repos=[{"url": repo_url(git_server, unique), "branches": [], "tags": []}],
        webhooks={
            "github_secret": GITHUB_SECRET,
            "gitlab_token": GITLAB_TOKEN,
            "max_body_bytes": MAX_BODY,
        },
    )
    witness = Witness(server)
    yield witness
    log = server.log()
    assert "Traceback" not in log, log[-5000:]
    assert not server_errors(log), log[-5000:]


def repo_url(git_server: GitServer, unique: str) -> str:
    return f"git://127.0.0.1:{git_server.port}/fuzz-{unique}"


def test_no_request_from_the_openapi_document_answers_5xx_or_records_anything(
    fuzzed: Witness,
) -> None:
    with fuzzed.server.client() as client:
        document = client.get("/openapi.json").json()
    ops = operations(document)
    assert {op.path for op in ops} >= {
        "/api/v1/builds",
        "/hooks/github",
        "/build/{provider}/{spec}",
    }
    token = fuzzed.server.token or ""
    auth = [(b"Authorization", f"Bearer {token}".encode()), (b"Content-Type", b"application/json")]
    deep = deep_json(1000, "array")

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES["routes"])
    @given(api_requests(ops, token))
    @example(Request("POST", b"/api/v1/builds", auth, deep))
    @example(Request("POST", b"/api/v1/builds", auth, b'{"repo": "x", "ref": "\\ud800"}'))
    @example(Request("POST", b"/api/v1/builds", auth, b'{"\\udc00": 1}'))
    @example(Request("GET", b"/api/v1/builds?limit=%C2%B2", auth))
    @example(Request("GET", b"/build/gh/o/r/%ED%A0%80?build_only=true", auth))
    @example(Request("POST", b"/hooks/%ff%00", auth, deep))
    @example(Request("GET", b"/api/v1/builds", [(b"Authorization", b"Bearer \xe9")]))
    def property(request: Request) -> None:
        fuzzed.check(request)

    property()


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_no_signed_delivery_answers_5xx_or_builds(
    fuzzed: Witness, git_server: GitServer, unique: str, provider: str
) -> None:
    deep = deep_json(1000, "object")

    push = "push" if provider == "github" else "Push Hook"
    json_type = b"application/json"

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES[provider])
    @given(deliveries(provider, repo_url(git_server, unique)))
    @example(delivery_request(provider, push, deep, "d-1", json_type))
    @example(delivery_request(provider, push, b"[" * 2000, None, json_type))
    @example(delivery_request(provider, push, b'{"ref": "\\ud800"}', "d-2", json_type))
    def property(delivery: Request) -> None:
        fuzzed.check(delivery)

    property()
