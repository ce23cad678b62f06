"""webhook.hub_auth without a hub: settings and their environment defaults, who may do
what, signed cookies, the answer cache, and the app under a path prefix."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from jobs.settings import ConfigError, JupyterHubSettings, Settings, load_settings
from webhook.app import create_app
from webhook.auth import READ, WRITE, Forbidden
from webhook.hub_api import HubConfig, HubIdentity, IdentityCache
from webhook.hub_auth import (
    SESSION_COOKIE,
    STATE_COOKIE,
    principal_for,
    resolve_base_path,
    safe_target,
    sign,
    unsign,
)

HUB_ENV = {
    "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
    "JUPYTERHUB_API_TOKEN": "service-secret",
    "JUPYTERHUB_SERVICE_NAME": "builder",
    "JUPYTERHUB_SERVICE_PREFIX": "/services/builder/",
    "JUPYTERHUB_CLIENT_ID": "service-builder",
    "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/builder/oauth_callback",
    "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/hub/",
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(**hub: object) -> HubConfig:
    settings = JupyterHubSettings.model_validate(
        {"enabled": True, "api_url": "http://hub/hub/api", "api_token": "t", **hub}
    )
    return HubConfig.resolve(settings, "/services/binder/", environ={})


def test_every_default_comes_from_the_environment_jupyterhub_gives_its_services() -> None:
    settings = Settings(
        jupyterhub=JupyterHubSettings(enabled=True, api_url="x", api_token=SecretStr("y"))
    )
    assert resolve_base_path(settings, HUB_ENV) == "/services/builder/"
    resolved = HubConfig.resolve(JupyterHubSettings(), "/services/builder/", HUB_ENV)
    assert resolved.api_url == "http://hub:8081/hub/api"
    assert resolved.api_token == "service-secret"
    assert resolved.service_name == "builder"
    assert resolved.client_id == "service-builder"
    assert resolved.callback_url == "/services/builder/oauth_callback"
    assert resolved.authorize_url == "https://hub.example.org/hub/api/oauth2/authorize"
    assert resolved.access_scopes == {"access:services!service=builder", "access:services"}
    assert resolved.cookie_key != b"service-secret"


def test_settings_win_over_the_environment_and_defaults_fill_the_rest() -> None:
    hub = JupyterHubSettings(
        api_url="http://other/hub/api/",
        api_token=SecretStr("mine"),
        service_name="binder",
        access_scopes=["custom:binder"],
    )
    resolved = HubConfig.resolve(hub, "/", {})
    assert resolved.api_url == "http://other/hub/api"
    assert resolved.client_id == "service-binder"
    assert resolved.callback_url == "/oauth_callback"
    assert resolved.authorize_url == "/hub/api/oauth2/authorize"
    assert resolved.access_scopes == {"custom:binder"}
    base = HubConfig.resolve(hub, "/", {"JUPYTERHUB_BASE_URL": "/jhub/"})
    assert base.authorize_url == "/jhub/hub/api/oauth2/authorize"


def test_the_prefix_of_a_single_user_server_is_not_ours() -> None:
    # JUPYTERHUB_SERVICE_PREFIX is set in every single-user server too
    assert resolve_base_path(Settings(), {"JUPYTERHUB_SERVICE_PREFIX": "/user/a/"}) == "/"
    assert resolve_base_path(Settings(base_path="/x/"), HUB_ENV) == "/x/"


def test_enabled_without_a_hub_url_or_token_stops_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as error:
        load_settings(None, jupyterhub={"enabled": True, "api_token": "t"})
    assert "jupyterhub: Value error, enabled needs api_url (or $JUPYTERHUB_API_URL" in str(
        error.value
    )
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://hub/hub/api")
    assert load_settings(None, jupyterhub={"enabled": True, "api_token": "t"}).jupyterhub.enabled
    with pytest.raises(ConfigError, match="base_path: Value error, must be a URL path"):
        load_settings(None, base_path="services binder")


def test_who_may_do_what() -> None:
    open_ = config()
    restricted = config(allowed_users=["alice"], allowed_groups=["builders"])
    access = frozenset({"access:services!service=binder"})

    def user(
        name: str, groups: tuple[str, ...] = (), scopes: frozenset[str] = access
    ) -> HubIdentity:
        return HubIdentity("user", name, frozenset(groups), scopes)

    assert principal_for(user("dave"), open_).scopes == {READ, WRITE}
    assert principal_for(user("alice"), restricted).scopes == {READ, WRITE}
    assert principal_for(user("carol", ("builders",)), restricted).scopes == {READ, WRITE}
    dave = principal_for(user("dave", ("others",)), restricted)
    assert dave.scopes == {READ}
    assert "user:dave is not in jupyterhub.allowed_users" in dave.why_not
    admin = user("root", scopes=frozenset({"access:services"}))
    assert principal_for(admin, open_).scopes == {READ, WRITE}
    # a service named like an allowed user is still not that user
    service = HubIdentity("service", "alice", frozenset(), access)
    assert principal_for(service, restricted).scopes == {READ}
    for scopes in (frozenset(), frozenset({"access:services!service=other"})):
        with pytest.raises(Forbidden, match="user:bob may not use this service"):
            principal_for(user("bob", scopes=scopes), open_)


def test_cookies_are_signed_and_expire() -> None:
    key, now = b"k" * 32, 1000.0
    value = sign(key, {"token": "abc", "exp": now + 10})
    assert unsign(key, value, now) == {"token": "abc", "exp": now + 10}
    assert unsign(key, value, now + 11) is None
    assert unsign(b"other", value, now) is None
    payload, _, mac = value.rpartition(".")
    forged = sign(b"attacker", {"token": "abc", "exp": now + 10_000}).rpartition(".")[0]
    assert unsign(key, f"{forged}.{mac}", now) is None
    for garbage in (None, "", ".", "x", f"{payload}.", "!!.00", sign(key, {"token": "no exp"})):
        assert unsign(key, garbage, now) is None


def test_the_cache_remembers_answers_for_a_while_and_not_forever() -> None:
    alice = HubIdentity("user", "alice", frozenset(), frozenset())
    cache = IdentityCache(ttl=10, entries=2)
    cache.put(b"a", alice, now=0)
    cache.put(b"unknown", None, now=0)
    assert cache.get(b"a", now=5) == (True, alice)
    assert cache.get(b"unknown", now=5) == (True, None)
    assert cache.get(b"a", now=10) == (False, None)
    cache.put(b"c", alice, now=6)  # the oldest entry makes room
    assert cache.get(b"a", now=7) == (False, None)
    off = IdentityCache(ttl=0)
    off.put(b"a", alice, now=0)
    assert off.get(b"a", now=0) == (False, None)


def hub_app(tmp_path: Path, api_url: str) -> httpx.AsyncClient:
    """The app in this process (no lifespan: nothing here builds)."""
    settings = load_settings(
        None,
        state_path=tmp_path / "state.sqlite",
        base_path="/services/binder/",
        jupyterhub={"enabled": True, "api_url": api_url, "api_token": "service-secret"},
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.anyio
async def test_routes_live_under_the_prefix_and_health_at_the_root_too(tmp_path: Path) -> None:
    async with hub_app(tmp_path, "http://127.0.0.1:9/hub/api") as client:
        assert (await client.get("/services/binder/health")).json() == {"status": "ok"}
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.get("/api/v1/builds")).status_code == 404
        document = (await client.get("/services/binder/openapi.json")).json()
        assert document["servers"] == [{"url": "/services/binder"}]
        assert (await client.get("/services/binder/api/v1/builds")).status_code == 401


@pytest.mark.anyio
async def test_a_browser_is_sent_to_the_hub_with_a_state_it_must_bring_back(
    tmp_path: Path,
) -> None:
    async with hub_app(tmp_path, "http://127.0.0.1:9/hub/api") as client:
        response = await client.get("/services/binder/")
        assert response.status_code == 302
        location = urlsplit(response.headers["location"])
        assert location.path == "/hub/api/oauth2/authorize"
        query = parse_qs(location.query)
        assert query["client_id"] == ["service-binder"]
        assert query["redirect_uri"] == ["/services/binder/oauth_callback"]
        assert query["response_type"] == ["code"]
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{STATE_COOKIE}=")
        for attribute in ("HttpOnly", "Path=/services/binder/", "SameSite=lax", "Max-Age=600"):
            assert attribute in cookie
        forged = await client.get(
            "/services/binder/oauth_callback",
            params={"code": "c", "state": "not-" + query["state"][0]},
        )
        assert forged.status_code == 400
        assert "state does not match" in forged.json()["error"]
        # API routes answer 401, never a redirect a script could not follow
        assert (await client.get("/services/binder/api/v1/images")).status_code == 401


@pytest.mark.anyio
async def test_a_hub_that_cannot_be_reached_is_503_not_a_bad_token(tmp_path: Path) -> None:
    async with hub_app(tmp_path, f"http://127.0.0.1:{closed_port()}/hub/api") as client:
        response = await client.get(
            "/services/binder/api/v1/builds", headers={"Authorization": "token some-hub-token"}
        )
    assert response.status_code == 503
    assert "JupyterHub could not be reached" in response.json()["error"]


@pytest.mark.anyio
async def test_a_forged_session_cookie_is_no_session(tmp_path: Path) -> None:
    async with hub_app(tmp_path, f"http://127.0.0.1:{closed_port()}/hub/api") as client:
        forged = sign(b"not the key", {"token": "t", "exp": time.time() + 100})
        client.cookies.set(SESSION_COOKIE, forged, path="/services/binder/")
        # not even asked of the (unreachable) hub: a forged cookie is no credential at all
        assert (await client.get("/services/binder/api/v1/builds")).status_code == 401


def test_a_login_only_ever_returns_under_the_base_path() -> None:
    base = "/services/binder/"
    assert safe_target("/services/binder/build/git/x%2Fy/main?a=1", base) == (
        "/services/binder/build/git/x%2Fy/main?a=1"
    )
    for elsewhere in ("", "/hub/admin", "https://evil.example.org/", "/services/binderx"):
        assert safe_target(elsewhere, base) == base
    for other_site in ("//evil.example.org/", "/\\evil.example.org/"):
        assert safe_target(other_site, "/") == "/"


@pytest.mark.anyio
async def test_the_hubs_own_service_token_may_read_and_never_build(tmp_path: Path) -> None:
    """The hub's ``extraConfig`` fetches the profiles with the token it shares with this
    service: known here without asking the hub (unreachable in this test), read-only."""
    async with hub_app(tmp_path, f"http://127.0.0.1:{closed_port()}/hub/api") as client:
        own = {"Authorization": "token service-secret"}
        refused = await client.post(
            "/services/binder/api/v1/builds", headers=own, json={"repo": "https://x.org/a/b"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"] == "token 'service:binder' lacks the builds:write scope"
        other = await client.post(
            "/services/binder/api/v1/builds",
            headers={"Authorization": "token service-secret2"},
            json={"repo": "https://x.org/a/b"},
        )
        assert other.status_code == 503  # any other token is the hub's to judge
