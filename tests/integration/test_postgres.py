"""``binderhub-service serve`` on a real PostgreSQL (Debian's, ``scripts/ensure-postgres.sh``):
two processes sharing one database build an image once and answer for it alike; a
database that stops, or stops answering, is answered 503 with ``Retry-After`` (a
webhook is not acknowledged), and when it is back the same process serves again; a
refused password stops the service at start-up, naming the setting (issue 27)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from testkit.components import GitServer, ServiceProcess, dockerfile, git
from testkit.postgres import Postgres, start_postgres
from tests.conftest import failed

from .test_http_api import wait_for_state
from .test_webhooks import WEBHOOKS, for_github, send_github

StartServer = Callable[..., ServiceProcess]


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> Iterator[Postgres]:
    """A server of the test's own: tests stop it, and nobody else uses it."""
    server = start_postgres()
    yield server
    server.resume() if (server.directory / "postmaster.pid").exists() else None
    if failed(request):
        print(f"\n----- PostgreSQL log -----\n{server.log()}")
    server.remove()


def on_postgres(url: str, tmp_path: Path, name: str, **settings: Any) -> dict[str, Any]:
    """Settings of a server on the database ``url``, with working directories of its own."""
    return {
        "database": {"url": url, "timeout": 2},
        "state_path": str(tmp_path / name / "unused.sqlite"),
        **settings,
    }


def test_two_servers_on_one_database_build_an_image_once(
    git_server: GitServer,
    start_server: StartServer,
    postgres: Postgres,
    tmp_path: Path,
    unique: str,
) -> None:
    url = postgres.create_database()
    repo = git_server.create_repo(f"pg-{unique}", {"Dockerfile": dockerfile("COPY . /srv/")})
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    servers = [start_server(**on_postgres(url, tmp_path, f"s{n}")) for n in range(2)]
    clients = [server.client() for server in servers]

    def ask(client: httpx.Client) -> dict[str, Any]:
        response = client.post("/api/v1/builds", json={"repo": repo.url, "ref": sha})
        assert response.status_code in (200, 202), response.text
        body: dict[str, Any] = response.json()
        return body

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, clients * 4))
    ids = {answer["id"] for answer in answers}
    assert len(ids) == 1, answers
    assert sorted(answer["outcome"] for answer in answers).count("created") == 1
    (build_id,) = ids
    done = [wait_for_state(client, build_id, {"built", "failed"}) for client in clients]
    assert done[0] == done[1]
    assert done[0]["state"] == "built", done[0]
    for client in clients:  # one record, seen alike by both
        listed = client.get("/api/v1/builds").json()["builds"]
        assert [build["id"] for build in listed] == [build_id]
    logs = [client.get(f"/api/v1/builds/{build_id}/logs").json() for client in clients]
    assert logs[0] == logs[1]
    assert any("pushing" in line["phase"] for line in logs[0]["lines"]), logs[0]
    # asked again on either: the registry has it, nothing new is recorded
    assert {ask(client)["outcome"] for client in clients} == {"cached"}
    for client in clients:
        client.close()


def serve_exits(config: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "binderhub-service"
    return subprocess.run(
        [str(command), "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_a_refused_password_stops_the_service_naming_the_setting(
    postgres: Postgres, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    wrong = postgres.url(password="not-the-password-x7")
    config.write_text(yaml.safe_dump({"database": {"url": wrong}, "executor": "kubernetes"}))
    done = serve_exits(config)
    assert done.returncode == 2, done.stderr
    assert "database.url" in done.stderr
    assert 'password authentication failed for user "postgres"' in done.stderr
    assert "not-the-password-x7" not in done.stderr + done.stdout
    missing = postgres.url("no_such_database")
    config.write_text(yaml.safe_dump({"database": {"url": missing}, "executor": "kubernetes"}))
    done = serve_exits(config)
    assert done.returncode == 2, done.stderr
    assert "database.url: postgresql://postgres:***@127.0.0.1" in done.stderr
    assert 'database "no_such_database" does not exist' in done.stderr


class Load:
    """Signed push deliveries of a branch that builds nothing (each is decided, answered
    and recorded), each with a new delivery id, and ``/health``, from a thread, until
    ``stop``; every answer kept."""

    def __init__(self, server: ServiceProcess, repo: Any, sha: str) -> None:
        self._client = httpx.Client(base_url=server.url, timeout=30)
        self._data = for_github("github-push-branch-update.json", repo, sha, "refs/heads/other")
        self.answers: list[tuple[str, int, str | None]] = []  # delivery, status, Retry-After
        self.health: list[int] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            delivery = str(uuid.uuid4())
            response = send_github(self._client, self._data, delivery=delivery)
            self.answers.append(
                (delivery, response.status_code, response.headers.get("Retry-After"))
            )
            self.health.append(self._client.get("/health").status_code)
            time.sleep(0.02)

    def wait_for(self, status: int, timeout: float = 60) -> None:
        """Until a delivery sent from now on is answered ``status`` (200: any 2xx)."""
        start, deadline = len(self.answers), time.monotonic() + timeout
        while not any(
            s // 100 == 2 if status == 200 else s == status for _, s, _ in self.answers[start:]
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer {status} in {timeout} s: {self.answers[-5:]}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join()
        self._client.close()


def recorded(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT delivery_id FROM deliveries")}


@pytest.mark.parametrize("outage", ["stopped", "not answering"])
def test_an_outage_is_answered_503_and_the_same_process_serves_after_it(
    git_server: GitServer,
    start_server: StartServer,
    postgres: Postgres,
    tmp_path: Path,
    unique: str,
    outage: str,
) -> None:
    url = postgres.create_database()
    repo = git_server.create_repo(f"pgo-{unique}", {"Dockerfile": dockerfile()})
    sha = git("rev-parse", "HEAD", cwd=repo.path)
    server = start_server(
        **on_postgres(url, tmp_path, "s", repos=[{"url": repo.url}], webhooks=WEBHOOKS)
    )
    assert server.process is not None
    with Load(server, repo, sha) as load:
        load.wait_for(200)
        if outage == "stopped":
            postgres.stop()
        else:
            postgres.pause()
        load.wait_for(503)
        with server.client() as client:  # the API, too; the process answers what needs no database
            listed = client.get("/api/v1/builds")
            assert listed.status_code == 503, listed.text
            assert int(listed.headers["Retry-After"]) >= 1
            assert client.get("/health").status_code == 200
        if outage == "stopped":
            postgres.start()
        else:
            postgres.resume()
        load.wait_for(200)
        load.wait_for(200)
    assert server.process.poll() is None  # no restart
    statuses = {status for _, status, _ in load.answers}
    assert statuses == {200, 503}, statuses  # decided ("ignored": no build) or refused
    assert all(retry and int(retry) >= 1 for _, status, retry in load.answers if status == 503)
    assert set(load.health) == {200}
    kept = recorded(url)
    accepted = {delivery for delivery, status, _ in load.answers if status == 200}
    assert accepted <= kept  # acknowledged means recorded
    # a delivery answered 503 is delivered again by the forge: now it is accepted (or,
    # had its transaction committed as the connection broke, answered from its record)
    refused = [delivery for delivery, status, _ in load.answers if status == 503]
    data = for_github("github-push-branch-update.json", repo, sha, "refs/heads/other")
    with server.client() as client:
        for delivery in refused[:20]:
            again = send_github(client, data, delivery=delivery)
            assert again.status_code == 200, again.text
    assert set(refused[:20]) <= recorded(url)
