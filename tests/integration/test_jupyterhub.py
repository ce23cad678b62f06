"""The service as a JupyterHub service, behind a real hub and its real proxy (issue 7).

One hub and one ``binderhub-service serve`` for the module; every request goes through
the proxy at ``/services/binder/``, as jupyterhub-fancy-profiles' requests do. Users:
alice (access, named in ``allowed_users``), carol (access, in the ``builders`` group),
dave (access, neither: may read only) and bob (no access at all).
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from jobs.naming import image_name_for
from testkit.components import GitRepo, GitServer, Registry, ServiceProcess, wait_until
from tests.conftest import failed

from .conftest import API_TOKEN, token_settings
from .hub_components import PASSWORD, Hub, hub_with_service, print_logs

NAME = "binder"
PREFIX = f"/services/{NAME}"
SERVICE_TOKEN = "binder-service-token-for-hub-tests"
ACCESS = [f"access:services!service={NAME}"]
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def hub_setup(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, git_server: GitServer
) -> Iterator[tuple[Hub, ServiceProcess, GitRepo]]:
    with hub_with_service(
        tmp_path_factory,
        registry,
        git_server,
        kind="hub",
        service_name=NAME,
        service_token=SERVICE_TOKEN,
        settings={
            "auth": {
                "tokens": [token_settings(API_TOKEN, "tests", ["builds:read", "builds:write"])]
            }
        },
        jupyterhub={"allowed_users": ["alice"], "allowed_groups": ["builders"]},
        users={"alice": ACCESS, "carol": ACCESS, "dave": ACCESS, "bob": []},
        groups={"builders": ["alice", "carol"]},
        token=API_TOKEN,
    ) as setup:
        yield setup


@pytest.fixture
def _logs_on_failure(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo], request: pytest.FixtureRequest
) -> Iterator[None]:
    yield
    if failed(request):
        print_logs(*hub_setup[:2])


pytestmark = pytest.mark.usefixtures("_logs_on_failure")


def through_proxy(hub: Hub, token: str | None = None, scheme: str = "token") -> httpx.Client:
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    return httpx.Client(base_url=f"{hub.url}{PREFIX}", headers=headers, timeout=60)


def wait_finished(client: httpx.Client, build_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        build: dict[str, Any] = client.get(f"/api/v1/builds/{build_id}").json()
        if build["state"] not in ("queued", "running"):
            return build
        time.sleep(0.5)
    raise TimeoutError(f"build {build_id} did not finish")


def git_spec(repo: GitRepo, ref: str) -> str:
    return f"git/{quote(repo.url, safe='')}/{quote(ref, safe='')}"


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in response.iter_lines()
        if line.startswith("data: ")
    ]


def image_of(service: ServiceProcess, repo: GitRepo) -> str:
    prefix = yaml.safe_load(service.config.read_text())["image_prefix"]
    sha = (repo.path / ".git" / "refs" / "heads" / "main").read_text().strip()
    return image_name_for(prefix, repo.url, sha)


def hub_login(client: httpx.Client, hub: Hub, user: str, url: str) -> httpx.Response:
    """Open ``url`` in a "browser" (``client`` keeps cookies, follows redirects); when
    the hub's login form comes, post it as ``user``, and return where it all ends."""
    response = client.get(url)
    if "/hub/login" not in str(response.url):
        return response
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', response.text)
    assert xsrf is not None, response.text[:2000]
    action = re.search(r'<form action="([^"]+)"', response.text)
    assert action is not None, response.text[:2000]
    return client.post(
        httpx.URL(hub.url).join(html.unescape(action.group(1))),
        data={"username": user, "password": PASSWORD, "_xsrf": xsrf.group(1)},
    )


def test_a_hub_users_token_builds_through_the_hubs_proxy(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, service, repo = hub_setup
    token = hub.token_for("alice")
    with through_proxy(hub, token) as client:
        response = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"})
        assert response.status_code in (200, 202), response.text
        answer = response.json()
        if answer["outcome"] != "cached":  # built already if the stream test ran first
            assert answer["outcome"] in ("created", "joined"), answer
            answer = wait_finished(client, answer["id"])
    assert answer["state"] == "built", answer
    assert answer["image"] == image_of(service, repo)
    # the same token as Bearer, and the service's own API token, see it
    for token_, scheme in ((token, "Bearer"), (API_TOKEN, "Bearer")):
        with through_proxy(hub, token_, scheme) as client:
            images = client.get("/api/v1/images").json()["repos"]
        assert [entry["repo"] for entry in images] == [repo.url]


def test_readiness_checks_the_hub_too(hub_setup: tuple[Hub, ServiceProcess, GitRepo]) -> None:
    _, service, _ = hub_setup
    answers: list[httpx.Response] = []

    def hub_answers() -> bool:
        # The service may start before the hub answers; its monitor checks again every
        # few seconds, so the probe reports the hub once the next check has run.
        with service.client(None) as client:  # at the root, as probes ask
            answers.append(client.get("/health/ready"))
        assert answers[-1].status_code == 200, answers[-1].text
        return answers[-1].json()["checks"]["jupyterhub"]["ok"] is True

    wait_until(hub_answers, timeout=30, interval=0.5)


def test_who_may_do_what(hub_setup: tuple[Hub, ServiceProcess, GitRepo]) -> None:
    hub, _, repo = hub_setup
    body = {"repo": repo.url, "ref": "main"}
    cases: list[tuple[str | None, str, int | None, str]] = [
        (None, "post", 401, "this needs a token with the builds:write scope"),
        ("not-a-hub-token", "post", 401, "invalid token"),
        (
            "bob",
            "post",
            403,
            f"user:bob may not use this service (needs access:services or {ACCESS[0]})",
        ),
        ("bob", "get", 403, "JupyterHub user:bob may not use this service"),
        ("dave", "post", 403, "user:dave is not in jupyterhub.allowed_users or allowed_groups"),
        ("dave", "get", 200, ""),
        ("carol", "post", None, ""),  # in the builders group
    ]
    for who, method, status, message in cases:
        token = hub.token_for(who) if who in ("bob", "carol", "dave") else who
        with through_proxy(hub, token) as client:
            if method == "post":
                response = client.post("/api/v1/builds", json=body)
            else:
                response = client.get("/api/v1/builds")
        if status is None:
            assert response.status_code in (200, 202), (who, response.text)
            continue
        assert response.status_code == status, (who, method, response.text)
        if message:
            assert message in response.json()["error"], (who, response.text)


def test_a_token_without_the_access_scope_is_refused_even_for_a_user_with_it(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, _, _ = hub_setup
    # alice may use the service, but this token of hers was made for something else
    token = hub.token_for("alice", scopes=["read:users:name!user=alice"])
    with through_proxy(hub, token) as client:
        response = client.get("/api/v1/builds")
    assert response.status_code == 403
    assert "may not use this service" in response.json()["error"]


def test_the_binderhub_stream_answers_ready_to_a_hub_token(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, service, repo = hub_setup
    with (
        through_proxy(hub, hub.token_for("alice"), "Bearer") as client,
        client.stream(
            "GET",
            f"/build/{git_spec(repo, 'main')}",
            params={"build_only": "true"},
            headers=SSE,
            timeout=httpx.Timeout(60, read=300),
        ) as response,
    ):
        assert response.status_code == 200
        events = sse_events(response)
    assert events[-1]["phase"] == "ready", events
    assert events[-1]["imageName"] == image_of(service, repo)


def test_a_browser_logs_in_through_the_hubs_oauth_and_reaches_the_page(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, _, _ = hub_setup
    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        first = browser.get(f"{hub.url}{PREFIX}/")
        # not logged in: sent to the hub's authorize page, and from there to its login
        assert "/hub/login" in str(first.url)
        assert any("/hub/api/oauth2/authorize" in str(r.url) for r in first.history)
        page = hub_login(browser, hub, "alice", f"{hub.url}{PREFIX}/")
        assert page.status_code == 200, page.text[:2000]
        assert str(page.url) == f"{hub.url}{PREFIX}/"
        assert "<title>binderhub-service</title>" in page.text
        assert any(f"{PREFIX}/oauth_callback" in str(r.url) for r in page.history)
        cookie = next(c for c in browser.cookies.jar if c.name == "binderhub-service-session")
        assert cookie.path == f"{PREFIX}/"
        assert cookie.has_nonstandard_attr("HttpOnly")
        # the page's own requests read with the session ...
        listed = browser.get(f"{hub.url}{PREFIX}/api/v1/builds")
        assert listed.status_code == 200, listed.text
        assert "builds" in listed.json()
        # ... but a session never changes anything: that needs a token in the header
        posted = browser.post(f"{hub.url}{PREFIX}/api/v1/builds", json={"repo": "x"})
        assert posted.status_code == 401
        # logging out ends the session
        browser.get(f"{hub.url}{PREFIX}/logout")
        assert browser.get(f"{hub.url}{PREFIX}/api/v1/builds").status_code == 401


def test_a_browser_without_access_is_stopped_by_the_hub(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, _, _ = hub_setup
    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        end = hub_login(browser, hub, "bob", f"{hub.url}{PREFIX}/")
        assert end.status_code == 403
        assert "binderhub-service-session" not in {c.name for c in browser.cookies.jar}


def test_a_forged_callback_is_refused(hub_setup: tuple[Hub, ServiceProcess, GitRepo]) -> None:
    hub, _, _ = hub_setup
    with httpx.Client(timeout=60) as browser:
        no_state = browser.get(f"{hub.url}{PREFIX}/oauth_callback", params={"code": "x"})
        assert no_state.status_code == 400
        assert "state does not match" in no_state.json()["error"]
        # a real state cookie, but the state in the URL is someone else's
        start = browser.get(f"{hub.url}{PREFIX}/")
        assert start.status_code == 302
        forged = browser.get(
            f"{hub.url}{PREFIX}/oauth_callback", params={"code": "x", "state": "forged"}
        )
        assert forged.status_code == 400
        assert "state does not match" in forged.json()["error"]


def test_the_stream_follows_the_oauth_login_as_fancy_profiles_fetch_does(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    """fancy-profiles fetches the stream from the hub's spawn page with the hub's
    cookies only; the redirects through the hub's OAuth give it a session on the way."""
    hub, service, repo = hub_setup
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60, read=300)) as browser:
        hub_login(browser, hub, "carol", f"{hub.url}/hub/home")
        with browser.stream(
            "GET",
            f"{hub.url}{PREFIX}/build/{git_spec(repo, 'main')}",
            params={"build_only": "true"},
            headers=SSE,
        ) as response:
            assert response.status_code == 200
            assert any("/hub/api/oauth2/authorize" in str(r.url) for r in response.history)
            events = sse_events(response)
    assert events[-1]["phase"] == "ready", events
    assert events[-1]["imageName"] == image_of(service, repo)


def test_the_profile_list_offers_the_images_built_here(
    hub_setup: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    """``GET /api/v1/profiles`` against the real catalog, through the hub's proxy with a
    hub user's token (the hub's own fetch: tests/integration/test_hub_snippet.py;
    KubeSpawner's handling of the result: tests/unit/test_hub_profiles.py)."""
    hub, service, repo = hub_setup
    with through_proxy(hub, API_TOKEN, "Bearer") as client:
        answer = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"}).json()
        if answer["outcome"] != "cached":
            wait_finished(client, answer["id"])
    with through_proxy(hub, hub.token_for("dave")) as client:
        (profile,) = client.get("/api/v1/profiles").json()
        refused = client.get("/api/v1/profiles", params={"repo": repo.url})
    assert refused.status_code == 400
    assert refused.json()["error"] == "unknown query parameter(s): repo"
    (choice,) = profile["profile_options"]["image"]["choices"].values()
    assert choice["display_name"] == f"{repo.path.name} (main)"
    assert choice["kubespawner_override"] == {"image": image_of(service, repo)}
