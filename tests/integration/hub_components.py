"""A real JupyterHub (pip ``jupyterhub``) behind a real configurable-http-proxy (npm,
from tests/node), on loopback, with this service registered as an externally managed
service. Users log in with JupyterHub's DummyAuthenticator and a shared password."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from testkit.components import (
    GitRepo,
    GitServer,
    Registry,
    ServiceProcess,
    dockerfile,
    free_port,
    legacy_repo2docker,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CHP = ROOT / "tests" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
PASSWORD = "hub-test-password"
ADMIN_TOKEN = "hub-test-admin-service-token"


@dataclass
class Hub:
    directory: Path
    url: str
    """The proxy's public URL: ``/hub/`` and ``/services/<name>/`` live under it."""
    api_url: str
    """The hub's own API (``http://127.0.0.1:<hub port>/hub/api``), as services call it."""
    process: subprocess.Popen[bytes]

    def admin(self) -> httpx.Client:
        """A client with the token of a test service that may manage users and tokens."""
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"token {ADMIN_TOKEN}"}, timeout=30
        )

    def token_for(self, user: str, scopes: list[str] | None = None) -> str:
        """A new API token of ``user`` (all of the user's permissions unless ``scopes``)."""
        body: dict[str, Any] = {"note": "binderhub-service tests"}
        if scopes is not None:
            body["scopes"] = scopes
        with self.admin() as client:
            response = client.post(f"/users/{user}/tokens", json=body)
            response.raise_for_status()
            return str(response.json()["token"])

    def log(self) -> str:
        return (self.directory / "hub.log").read_text(errors="replace")[-20000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_hub(
    directory: Path,
    *,
    service_name: str,
    service_url: str,
    service_token: str,
    users: dict[str, list[str]],
    groups: dict[str, list[str]] | None = None,
    hub_port: int | None = None,
    extra_config: str = "",
) -> Hub:
    """A hub whose ``users`` map each user name to the roles' scopes they get;
    ``groups`` maps group names to members. The service is reached at
    ``/services/<service_name>/`` through the proxy and logs browsers in by OAuth.
    ``extra_config`` (Python) ends the hub's configuration file."""
    directory.mkdir(parents=True, exist_ok=True)
    proxy_port, api_port = free_port(), free_port()
    hub_port = hub_port or free_port()
    url = f"http://127.0.0.1:{proxy_port}"
    roles = [
        {"name": f"test-{user}", "users": [user], "scopes": scopes}
        for user, scopes in users.items()
        if scopes
    ]
    roles.append(
        {
            "name": "test-admin",
            "services": ["test-admin"],
            "scopes": ["admin:users", "tokens", "admin:groups", "list:users"],
        }
    )
    services = [
        {
            "name": service_name,
            "url": service_url,
            "api_token": service_token,
            "oauth_no_confirm": True,
            "oauth_redirect_uri": f"/services/{service_name}/oauth_callback",
        },
        {"name": "test-admin", "api_token": ADMIN_TOKEN},
    ]
    load_groups = {name: {"users": members} for name, members in (groups or {}).items()}
    config = directory / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(
            f"""
            c = get_config()  # noqa: F821
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {proxy_port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {hub_port}
            c.JupyterHub.db_url = "sqlite:///{directory / "hub.sqlite"}"
            c.JupyterHub.cookie_secret_file = "{directory / "cookie_secret"}"
            c.JupyterHub.pid_file = "{directory / "hub.pid"}"
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
            c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
            c.ConfigurableHTTPProxy.auth_token = "hub-test-proxy-token"
            c.ConfigurableHTTPProxy.debug = True
            c.JupyterHub.authenticator_class = "dummy"
            c.DummyAuthenticator.password = {PASSWORD!r}
            c.Authenticator.allowed_users = {set(users)!r}
            c.JupyterHub.load_groups = {load_groups!r}
            c.JupyterHub.services = {services!r}
            c.JupyterHub.load_roles = {roles!r}
            c.JupyterHub.log_level = "DEBUG"
            """
        )
        + extra_config
    )
    log_path = directory / "hub.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    hub = Hub(directory, url, f"http://127.0.0.1:{hub_port}/hub/api", process)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited:\n{hub.log()}")
        try:
            # through the proxy, so that its routes are in place too
            return httpx.get(f"{url}/hub/api/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout=90, interval=0.25)
    except Exception:
        hub.stop()
        raise
    return hub


@contextmanager
def hub_with_service(
    tmp_path_factory: pytest.TempPathFactory,
    registry: Registry,
    git_server: GitServer,
    *,
    kind: str,
    service_name: str,
    service_token: str,
    settings: dict[str, Any],
    jupyterhub: dict[str, Any],
    users: dict[str, list[str]],
    groups: dict[str, list[str]] | None = None,
    token: str | None = None,
    hub_config: str = "",
) -> Iterator[tuple[Hub, ServiceProcess, GitRepo]]:
    """A ``binderhub-service serve`` registered with a real hub, and a repository to build.

    The service listens behind the hub's proxy at ``/services/<service_name>/``, with
    ``settings`` and ``jupyterhub`` (its ``jupyterhub`` section, beside what this sets)
    added to what every such test needs; ``kind`` names the image prefix and the repo;
    ``hub_config`` ends the hub's configuration file.
    Both processes are stopped at the end."""
    directory = tmp_path_factory.mktemp(f"{kind}-tests")
    unique = re.sub(r"[^a-z0-9]", "", directory.name.lower())[-8:]
    port, hub_port = free_port(), free_port()
    values: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "image_prefix": f"{registry.host}/{kind}{unique}-",
        "state_path": str(directory / "state" / "builds.sqlite"),
        "base_path": f"/services/{service_name}/",
        "repo2docker": legacy_repo2docker(),
        **settings,
        "jupyterhub": {
            "enabled": True,
            "api_url": f"http://127.0.0.1:{hub_port}/hub/api",
            "api_token": service_token,
            "service_name": service_name,
            **jupyterhub,
        },
    }
    repo = git_server.create_repo(f"{kind}-{unique}", {"Dockerfile": dockerfile("RUN true")})
    config = directory / "service.yml"
    config.write_text(yaml.safe_dump(values))
    service = ServiceProcess(config, directory / "service.log", port, token=token)
    hub: Hub | None = None
    try:
        # the service first: the hub waits for an external service to answer
        service.start()
        hub = start_hub(
            directory / "hub",
            service_name=service_name,
            service_url=service.url,
            service_token=service_token,
            hub_port=hub_port,
            users=users,
            groups=groups,
            extra_config=hub_config,
        )
        yield hub, service, repo
    finally:
        service.stop()
        if hub is not None:
            hub.stop()


def print_logs(hub: Hub, service: ServiceProcess) -> None:
    """Both processes' logs, for a test that failed."""
    print(f"\n----- service log -----\n{service.log()}")
    print(f"\n----- hub log -----\n{hub.log()}")
