"""The page at / in a real browser (headless Chromium): builds listed, log shown."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from testkit.components import GitServer, ServiceProcess, dockerfile

from .conftest import API_TOKEN, token_settings
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
