"""The spawn page of jupyterhub-fancy-profiles (the latest release from PyPI) in headless
Chromium (issue 23): a user of a real JupyterHub picks "Build your own image", types a
GitHub repository, and the service builds it (fetched through the ``mirrors`` setting from
the local git server) with repo2docker to ``ready``; the form sends the image to
KubeSpawner, which checks it against ``validation_regex`` and starts the spawn with it.

The hub is configured with the YAML of docs/launching.md (read from the page, the regex
written for the test's registry), so the test checks what that page states: the labels the
user sees and what the form posts. Playwright drives Debian's ``chromium`` (no browser of
its own is downloaded).

The hub has no Kubernetes: ``RecordingSpawner`` (a KubeSpawner) runs KubeSpawner's own
``load_user_options`` (profile, ``unlisted_choice`` regex, ``kubespawner_override``),
writes the resulting image and options to a file and fails the spawn there, with a message
the spawn page shows. The walkthrough's cluster test spawns for real."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect, sync_playwright

from jobs.naming import image_name_for
from testkit.components import GitRepo, GitServer, Registry, ServiceProcess, dockerfile, free_port
from tests.conftest import failed
from webhook.profiles import image_validation_regex

from .hub_components import PASSWORD, ROOT, Hub, hub_with_service, print_logs

NAME = "binder"
DOC = ROOT / "docs" / "launching.md"
DOC_PREFIX = "registry.example.org/binder-"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STOPPED = "the test hub has no Kubernetes; KubeSpawner chose the image"
# The build and the hub's answers are waited for, never timed: generous bounds only
# keep a broken run from hanging forever.
LONG = 600_000


def documented_values() -> dict[str, Any]:
    """The z2jh values of docs/launching.md's fancy-profiles section (its YAML block)."""
    text = DOC.read_text()
    section = text[text.index("## jupyterhub-fancy-profiles") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None, "docs/launching.md: no YAML in the fancy-profiles section"
    values: dict[str, Any] = yaml.safe_load(block.group(1))
    return values


def hub_config(values: dict[str, Any], image_prefix: str, record: Path, kubeconfig: Path) -> str:
    """The documented ``extraConfig`` and ``profileList``, as z2jh runs and sets them, for a
    KubeSpawner that records what it would start (see the module's docstring)."""
    profiles = json.loads(json.dumps(values["singleuser"]["profileList"]))
    image_option = profiles[0]["profile_options"]["image"]
    image_option["unlisted_choice"]["validation_regex"] = image_validation_regex(image_prefix)
    extra = "\n".join(values["hub"]["extraConfig"].values())
    return f"""
import json, os
os.environ["KUBECONFIG"] = {str(kubeconfig)!r}
from kubespawner import KubeSpawner
from tornado import web

class RecordingSpawner(KubeSpawner):
    async def start(self):
        await self.load_user_options()
        with open({str(record)!r}, "w") as f:
            json.dump({{"image": self.image, "user_options": self.user_options}}, f)
        # an HTTPError: the hub shows its message on the page
        raise web.HTTPError(503, {STOPPED!r} + ": " + self.image)

c.JupyterHub.spawner_class = RecordingSpawner
c.KubeSpawner.profile_list = {profiles!r}
{extra}
"""


def kubeconfig_nowhere(path: Path) -> Path:
    """A kubeconfig naming a cluster nothing here contacts (KubeSpawner loads one)."""
    server = f"https://127.0.0.1:{free_port()}"
    path.write_text(
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
    return path


@pytest.fixture(scope="module")
def github_repo(git_server: GitServer) -> GitRepo:
    """``https://github.com/<owner>/course``, as the mirror serves it."""
    owner = f"octo-{uuid.uuid4().hex[:8]}"
    return git_server.create_repo(f"{owner}/course", {"Dockerfile": dockerfile("RUN true")})


@pytest.fixture(scope="module")
def fancy_hub(
    tmp_path_factory: pytest.TempPathFactory,
    registry: Registry,
    git_server: GitServer,
    github_repo: GitRepo,
) -> Iterator[tuple[Hub, ServiceProcess, Path]]:
    directory = tmp_path_factory.mktemp("fancy")
    record = directory / "spawned.json"
    image_prefix = f"{registry.host}/fancy{directory.name[-6:].lower()}-"
    config = hub_config(
        documented_values(), image_prefix, record, kubeconfig_nowhere(directory / "kubeconfig")
    )
    with hub_with_service(
        tmp_path_factory,
        registry,
        git_server,
        kind="fancy",
        service_name=NAME,
        service_token="binder-service-token-for-fancy-tests",
        settings={
            "image_prefix": image_prefix,
            "allowed_repos": ["https://github.com/*"],
            "mirrors": [
                {"prefix": "https://github.com/", "url": f"git://127.0.0.1:{git_server.port}"}
            ],
        },
        jupyterhub={},
        users={"alice": [f"access:services!service={NAME}"]},
        hub_config=config,
    ) as (hub, service, _repo):
        yield hub, service, record


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(LONG)
            expect.set_options(timeout=LONG)
            yield page
        finally:
            browser.close()


@pytest.fixture
def _logs_on_failure(
    fancy_hub: tuple[Hub, ServiceProcess, Path], request: pytest.FixtureRequest
) -> Iterator[None]:
    yield
    if failed(request):
        print_logs(*fancy_hub[:2])


pytestmark = pytest.mark.usefixtures("_logs_on_failure")


def head_of(repo: GitRepo) -> str:
    return (repo.path / ".git" / "refs" / "heads" / "main").read_text().strip()


def test_the_documented_regex_is_the_services_own() -> None:
    image_option = documented_values()["singleuser"]["profileList"][0]["profile_options"]
    regex = image_option["image"]["unlisted_choice"]["validation_regex"]
    assert regex == image_validation_regex(DOC_PREFIX)


def test_a_github_repository_typed_on_the_spawn_page_is_built_and_spawned(
    fancy_hub: tuple[Hub, ServiceProcess, Path],
    github_repo: GitRepo,
    git_server: GitServer,
    registry: Registry,
    page: Page,
) -> None:
    hub, service, record = fancy_hub
    owner_repo = github_repo.url.split("/", 3)[3]  # git://host:port/<owner>/<repo>
    url = f"https://github.com/{owner_repo}"
    image = image_name_for(
        yaml.safe_load(service.config.read_text())["image_prefix"], url, head_of(github_repo)
    )
    documented = documented_values()["singleuser"]["profileList"][0]
    option = documented["profile_options"]["image"]

    page.goto(f"{hub.url}/hub/login?next=%2Fhub%2Fspawn")
    page.locator("input[name=username]").fill("alice")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[type=submit]").click()

    # the form, rendered by fancy-profiles' script from the documented profile list
    expect(page.get_by_role("heading", name=documented["display_name"])).to_be_visible()
    page.get_by_label(option["display_name"], exact=True).click()  # the Image list opens
    entries = page.locator(".select__option .react-select-item-title")
    expect(entries).to_have_text(
        [
            option["choices"]["standard"]["display_name"],
            option["unlisted_choice"]["display_name_in_choices"],
            "Build your own image",  # fancy-profiles' own entry, last
        ]
    )
    # the free-text entry: a field labelled with unlisted_choice.display_name
    entries.filter(has_text=option["unlisted_choice"]["display_name_in_choices"]).click()
    name_field = page.get_by_role("combobox", name=option["unlisted_choice"]["display_name"])
    expect(name_field).to_be_visible()
    page.get_by_label(option["display_name"], exact=True).click()
    entries.filter(has_text="Build your own image").click()
    expect(name_field).to_be_hidden()

    expect(page.get_by_text("Provider")).to_be_visible()
    expect(page.get_by_text("GitHub", exact=True)).to_be_visible()
    ref = page.get_by_role("combobox", name="Git Ref", exact=True)
    expect(ref).to_have_value("HEAD")  # the default branch
    expect(page.get_by_text("Build Logs")).to_be_visible()
    page.get_by_role("combobox", name="Repository", exact=True).fill(url)

    with page.expect_request(lambda r: f"/services/{NAME}/build/gh/" in r.url) as stream:
        page.get_by_role("button", name="Build Image and Start").click()
    assert stream.value.url.startswith(f"{hub.url}/services/{NAME}/build/gh/{owner_repo}/HEAD?")
    # the build ends: the form shows an error under Build Logs, or it sends the form and
    # the hub shows the spawn failing where the test's spawner stops it
    error = page.locator(".invalid-feedback")
    expect(page.get_by_text(STOPPED).or_(error)).to_be_visible(timeout=LONG)
    assert not error.count(), (
        f"{error.all_inner_texts()}\n{page.locator('.xterm-rows').inner_text()}"
    )

    spawned = json.loads(record.read_text())
    assert spawned["image"] == image  # through validation_regex and kubespawner_override
    assert spawned["user_options"]["profile"] == documented["slug"]
    assert spawned["user_options"]["image"] == "--extra-selectable-item"
    assert spawned["user_options"]["image--unlisted-choice"] == image
    # the image the form received on `ready` (it has no other source) was pushed
    name, tag = image.split("/", 1)[1].rsplit(":", 1)
    manifest = httpx.head(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200, manifest
    # fetched from the mirror (github.com is not reachable from here)
    assert f"upload-pack for '/{owner_repo}'" in git_server.log()
