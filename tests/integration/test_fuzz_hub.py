"""No input answers 5xx behind JupyterHub either (issue 20): the service registered
with a real hub (pip ``jupyterhub``), where tokens go on to the hub's ``/user``, the
session and OAuth state live in signed cookies, and ``/oauth_callback`` trades a code
with the hub. Hypothesis sends the service (directly, over a raw socket) requests from
its OpenAPI document with fuzzed ``Authorization`` headers, cookies (forged, or the real
state cookie of a login the test started) and callback parameters; the properties are
those of ``test_fuzz.py``."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from testkit.components import GitRepo, GitServer, Registry, ServiceProcess
from tests.conftest import failed

from .hub_components import Hub, hub_with_service, print_logs
from .test_fuzz import (
    FUZZ_SETTINGS,
    Operation,
    Request,
    Witness,
    garbage,
    header_text,
    nasty_text,
    operations,
    path_segment,
    percent,
)

NAME = "binder"
PREFIX = f"/services/{NAME}"
SERVICE_TOKEN = "binder-service-token-for-fuzz-tests"
ACCESS = [f"access:services!service={NAME}"]
EXAMPLES = 500
SESSION = b"binderhub-service-session"
STATE = b"binderhub-service-oauth-state"


@pytest.fixture(scope="module")
def hub_setup(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, git_server: GitServer
) -> Iterator[tuple[Hub, ServiceProcess, GitRepo]]:
    with hub_with_service(
        tmp_path_factory,
        registry,
        git_server,
        kind="fuzzhub",
        service_name=NAME,
        service_token=SERVICE_TOKEN,
        settings={"allowed_repos": [f"git://127.0.0.1:{git_server.port}/nothing-*"]},
        jupyterhub={"allowed_users": ["alice"]},
        users={"alice": ACCESS},
    ) as setup:
        yield setup


@pytest.fixture
def logged_out_login(hub_setup: tuple[Hub, ServiceProcess, GitRepo]) -> tuple[bytes, str]:
    """(the state cookie, the state) of a login the service started and nobody
    finished: what a callback needs to reach the hub with its code."""
    _, service, _ = hub_setup
    with httpx.Client(base_url=service.url) as browser:
        start = browser.get(f"{PREFIX}/")
    assert start.status_code == 302, start.text
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    cookie = start.headers["set-cookie"].partition(";")[0].partition("=")[2]
    return cookie.encode(), state


@st.composite
def hub_requests(
    draw: st.DrawFn, ops: list[Operation], token: str, login: tuple[bytes, str]
) -> Request:
    """A request to the service behind the hub: an operation of its document with
    ordinary parameters, and the hub's own inputs fuzzed."""
    op = draw(st.sampled_from(ops))
    path = op.path.encode()
    for name, where in op.parameters:
        if where == "path":
            value = draw(st.sampled_from(["gh", "o/r/main", "0" * 32, "github", "x"]))
            path = path.replace(b"{" + name.encode() + b"}", value.encode())
    query: list[bytes] = []
    if op.path.endswith("/oauth_callback"):
        state = login[1]
        for name, plausible in (("code", "x"), ("state", state), ("error", None)):
            roll = percent(draw)
            if roll < 50 and plausible is not None:
                query.append(name.encode() + b"=" + path_segment(plausible, False))
            elif roll < 80:
                text = draw(nasty_text)
                query.append(name.encode() + b"=" + path_segment(text, percent(draw) < 10))
    headers: list[tuple[bytes, bytes]] = [(b"Accept", b"text/event-stream")]
    auth = percent(draw)
    if auth < 30:
        headers.append((b"Authorization", f"token {token}".encode()))
    elif auth < 70:
        scheme = draw(st.sampled_from([b"token ", b"Bearer ", b"bearer ", b""]))
        headers.append((b"Authorization", scheme + draw(header_text)))
    elif auth < 75:
        headers.append((b"Authorization", draw(garbage)))
    cookies: list[bytes] = []
    for cookie in (SESSION, STATE):
        roll = percent(draw)
        if cookie == STATE and roll < 30:
            cookies.append(cookie + b"=" + login[0])
        elif roll < 60:
            forged = draw(st.sampled_from([b"", b"e30.", b"e30." + b"0" * 64])) + draw(header_text)
            cookies.append(cookie + b"=" + forged.replace(b";", b""))
    if cookies:
        headers.append((b"Cookie", b"; ".join(cookies)))
    target = path + (b"?" + b"&".join(query) if query else b"")
    return Request("GET" if op.method == "GET" else op.method, target, headers)


def test_nothing_sent_to_the_service_behind_a_hub_answers_5xx(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
    logged_out_login: tuple[bytes, str],
) -> None:
    hub, service, _ = hub_setup
    witness = Witness(service)
    witness.new_log()  # what the login above wrote
    with httpx.Client(base_url=service.url, timeout=30) as client:
        document = client.get(f"{PREFIX}/openapi.json").json()
    base = document["servers"][0]["url"]
    ops = [
        Operation(op.method, base + op.path, op.parameters, op.has_body)
        for op in operations(document)
        if op.method == "GET"
    ]
    assert any(op.path.endswith("/oauth_callback") for op in ops)
    token = hub.token_for("alice")
    state_cookie, state = logged_out_login
    callback = f"{PREFIX}/oauth_callback?code=x&state={state}".encode()

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
    @given(hub_requests(ops, token, logged_out_login))
    @example(
        Request("GET", f"{PREFIX}/api/v1/builds".encode(), [(b"Cookie", SESSION + b"=a.\xe9")])
    )
    @example(Request("GET", callback, [(b"Cookie", STATE + b"=" + state_cookie)]))
    @example(Request("GET", callback, [(b"Cookie", STATE + b"=" + state_cookie[:-1] + b"\xe9")]))
    @example(Request("GET", f"{PREFIX}/".encode(), [(b"Authorization", b"token \xe9")]))
    @example(Request("GET", f"{PREFIX}/".encode(), [(b"Authorization", b"token a,b/../c")]))
    def property(sent: Request) -> None:
        witness.check(sent)

    property()
    assert "Traceback" not in service.log()


@pytest.fixture(autouse=True)
def _logs_on_failure(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo], request: pytest.FixtureRequest
) -> Iterator[None]:
    yield
    if failed(request):
        print_logs(*hub_setup[:2])
