"""The hub side as documented (issue 14): a real JupyterHub with KubeSpawner loads exactly
``docs/hub-extra-config.py``, the ``extraConfig`` snippet the docs and the chart's NOTES
show, and its spawn page offers the images this service built. Nothing of this project is
importable by the hub: the snippet fetches ``GET /api/v1/profiles`` with the hub's own
service token.

KubeSpawner gets a kubeconfig naming a cluster nothing here contacts: rendering the spawn
form makes no Kubernetes call (a spawn would; the walkthrough's cluster test spawns)."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.components import GitRepo, GitServer, Registry, ServiceProcess, free_port
from tests.conftest import failed

from .conftest import API_TOKEN, token_settings
from .hub_components import ROOT, Hub, hub_with_service, print_logs
from .test_jupyterhub import hub_login, through_proxy, wait_finished

NAME = "binder"
SNIPPET = ROOT / "docs" / "hub-extra-config.py"
OWN_NAME = "The hub's standard environment"
OWN = {"display_name": OWN_NAME, "slug": "standard", "default": True}


def hub_config(kubeconfig: Path) -> str:
    """The test hub's own settings (KubeSpawner, one profile of its own), then the
    snippet, read from its file as z2jh runs ``hub.extraConfig``: ``exec`` in the
    configuration's namespace."""
    return f"""
import os
os.environ["KUBECONFIG"] = {str(kubeconfig)!r}
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.profile_list = [{OWN!r}]
exec(compile(open({str(SNIPPET)!r}).read(), {str(SNIPPET)!r}, "exec"))
"""


@pytest.fixture(scope="module")
def snippet_hub(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, git_server: GitServer
) -> Iterator[tuple[Hub, ServiceProcess, GitRepo]]:
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    with hub_with_service(
        tmp_path_factory,
        registry,
        git_server,
        kind="snippet",
        service_name=NAME,
        service_token="binder-service-token-for-snippet-tests",
        settings={
            "auth": {
                "tokens": [token_settings(API_TOKEN, "tests", ["builds:read", "builds:write"])]
            }
        },
        jupyterhub={},
        users={"alice": []},
        token=API_TOKEN,
        hub_config=hub_config(kubeconfig),
    ) as setup:
        yield setup


@pytest.fixture
def _logs_on_failure(
    snippet_hub: tuple[Hub, ServiceProcess, GitRepo], request: pytest.FixtureRequest
) -> Iterator[None]:
    yield
    if failed(request):
        print_logs(*snippet_hub[:2])


pytestmark = pytest.mark.usefixtures("_logs_on_failure")


def spawn_form(hub: Hub) -> str:
    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        page = hub_login(browser, hub, "alice", f"{hub.url}/hub/spawn")
        assert page.status_code == 200, page.text
        return page.text


def test_the_spawn_page_offers_the_hubs_profiles_then_the_images_built_here(
    snippet_hub: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, service, repo = snippet_hub
    before = spawn_form(hub)
    assert OWN_NAME in before
    assert "Prebuilt repository images" not in before  # nothing built yet: no profile

    with through_proxy(hub, API_TOKEN, "Bearer") as client:
        answer = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"}).json()
        wait_finished(client, answer["id"])
    form = spawn_form(hub)
    ours = form.index("Prebuilt repository images")
    assert form.index(OWN_NAME) < ours
    assert f"{repo.path.name} (main)" in form[ours:]
    # KubeSpawner shows display names; the choice's key leads to the image
    # (tests/unit/test_hub_profiles.py starts it through KubeSpawner's own handling)
    assert re.search(rf'value="{re.escape(repo.path.name)}-main-[0-9a-f]{{8}}"', form[ours:])
    # the hub read the list with its own token: the service logged no refusal
    assert not re.search(r'"status": 40[13]', service.log())


def test_a_service_that_does_not_answer_in_time_leaves_the_last_list_received(
    snippet_hub: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    """Issue 20: a service that answers slowly (or not at all) emptied the spawn page of
    built images, saying little in the hub's log."""
    hub, service, repo = snippet_hub
    with through_proxy(hub, API_TOKEN, "Bearer") as client:  # something built to offer
        answer = client.post("/api/v1/builds", json={"repo": repo.url, "ref": "main"}).json()
        if answer["id"] is not None:
            wait_finished(client, answer["id"])
    received = spawn_form(hub)  # the hub receives the list
    assert f"{repo.path.name} (main)" in received
    url = f"{service.url}/services/{NAME}/api/v1/profiles"
    assert service.process is not None
    service.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        form = spawn_form(hub)
    finally:
        service.process.send_signal(signal.SIGCONT)
    assert form.index(OWN_NAME) < form.index("Prebuilt repository images")
    assert f"{repo.path.name} (main)" in form
    warnings = [line for line in hub.log().splitlines() if f"profiles from {url}: " in line]
    assert re.search(r"Timeout.*; showing the list received \d+ s ago$", warnings[-1]), warnings


def test_a_service_that_is_down_leaves_the_hubs_own_profiles_and_the_last_list(
    snippet_hub: tuple[Hub, ServiceProcess, GitRepo],
) -> None:
    hub, service, repo = snippet_hub
    before = spawn_form(hub)
    service.stop()
    try:
        form = spawn_form(hub)
    finally:
        service.start()
    assert OWN_NAME in form
    # the same offer as before it stopped (none when nothing was built yet)
    built = f"{repo.path.name} (main)"
    assert (built in form) == (built in before)
    url = f"{service.url}/services/{NAME}/api/v1/profiles"
    warnings = [line for line in hub.log().splitlines() if f"profiles from {url}: " in line]
    assert warnings[-1].endswith(" s ago"), warnings
