"""The page at / in a real browser (headless Chromium): builds listed, log shown, a
build asked for with what a person pastes (a URL, a DOI)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from testkit.components import GitServer, ServiceProcess, dockerfile

from .conftest import API_TOKEN, token_settings
from .provider_records import proxy, publish, standin, start  # noqa: F401 - fixtures
from .provider_standins import ProviderStandIn
from .test_binderhub_stream import records
from .test_http_api import wait_for_state

StartServer = Callable[..., ServiceProcess]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def browse(url: str, profile: Path, *extra: str) -> str:
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_page_lists_builds_and_shows_a_log(
    git_server: GitServer, start_server: StartServer, unique: str, tmp_path: Path
) -> None:
    repo = git_server.create_repo(f"page-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})
    broken = git_server.create_repo(f"pagebad-{unique}", {"Dockerfile": dockerfile("RUN false")})
    # open_read: the page reads without a token; the builds are requested with one
    writer = token_settings(API_TOKEN, "tests", ["builds:read", "builds:write"])
    server = start_server(auth={"open_read": True, "tokens": [writer]})
    with server.client() as client:
        good_id = client.post("/api/v1/builds", json={"repo": repo.url}).json()["id"]
        bad_id = client.post("/api/v1/builds", json={"repo": broken.url}).json()["id"]
        wait_for_state(client, good_id, {"built"})
        wait_for_state(client, bad_id, {"failed"})

    dom = browse(f"{server.url}/#build={good_id}", tmp_path / "profile", "--dump-dom")
    assert f'id="build-{good_id}"' in dom
    assert f'id="build-{bad_id}"' in dom
    assert 'class="state state-built">built<' in dom
    assert 'class="state state-failed">failed<' in dom
    assert "Successfully pushed" in dom  # the followed log, read by the page's script
    assert f'<code id="log-build">{good_id}</code>' in dom
    assert '<section id="prepull" class="hidden">' in dom  # pre-pull is off: no section
    shot = tmp_path / "page.png"
    browse(
        f"{server.url}/#build={bad_id}",
        tmp_path / "profile2",
        f"--screenshot={shot}",
        "--window-size=1280,900",
    )
    assert shot.stat().st_size > 10_000


def test_page_asks_for_a_token_when_reading_is_closed(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    dom = browse(f"{server.url}/", tmp_path / "profile", "--dump-dom")
    assert 'id="token-form" style="display: block;"' in dom
    assert "this needs a token with the builds:read scope" in dom


def test_a_doi_link_pasted_on_the_page_builds_its_record(
    start: StartServer,  # noqa: F811 - the fixture
    standin: ProviderStandIn,  # noqa: F811 - the fixture
) -> None:
    """What the API's ``repo`` takes can be typed on the page: a doi.org link of a
    Zenodo concept builds its latest version (through the Zenodo stand-in), and the
    page follows the build's log; a malformed DOI is named and builds nothing."""
    publish(standin, "3242081")
    server = start()  # reading needs a token: the page asks for it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/")
            page.fill("#token", API_TOKEN)
            page.click("#token-form button")
            expect(page.locator("#builds")).to_be_visible()

            page.fill("#request-repo", "10.5281/")
            page.click("#request-form button")
            expect(page.locator("#request-result")).to_contain_text("is not a DOI")

            page.fill("#request-repo", "https://doi.org/10.5281/zenodo.3242074")
            page.click("#request-form button")
            expect(page.locator("#request-result")).to_contain_text("created: ")
            expect(page.locator("#log-state")).to_have_text("built", timeout=300_000)
            expect(page.locator("#log")).to_contain_text("built-zenodo-version-3242081")
            expect(page.locator("#builds")).to_contain_text("https://zenodo.org/records/3242074")
        finally:
            browser.close()
    [build] = records(server)
    assert (build.provider, build.sha, build.trigger) == ("zenodo", "3242081", "api")
