"""What stored and served text may not show (jobs/redaction.py): golden input and
output, and the rules one by one."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

from jobs.redaction import (
    BUILD_DIR,
    SECRET,
    Redactor,
    docker_config_secrets,
    redact,
    redactions_for,
    secret_forms,
)
from jobs.settings import Settings, load_settings

GOLDEN = Path(__file__).parent / "golden"
ENV = {"DOCKER_HOST": "tcp://docker.internal:2376"}


def golden_settings() -> Settings:
    """Secrets in every kind of place a setting holds one."""
    return load_settings(
        None,
        image_prefix="registry.example.org/binder-",
        state_path="/var/lib/binderhub-service/state.sqlite",
        registry={"username": "pusher", "password": "registry-pa55word"},
        webhooks={"github_secret": "webhook-s3cret", "gitlab_token": "abc"},
        jupyterhub={"api_token": "hub-api-token"},
        forges={
            "hosts": [{"kind": "github", "url": "https://github.com", "token": "ghp_forgetoken"}],
            "credentials": [
                {"url": "https://git.example.org", "username": "bot", "password": 'p@ss/w"ord'}
            ],
        },
        buildkit={"host": "unix:///root/.local/state/binderhub-service/buildkitd/buildkitd.sock"},
        repo2docker={
            "version": "2024.7.0",
            "command": ["/opt/repo2docker-2024/bin/python", "-m", "repo2docker"],
        },
        kubernetes={"buildkit_host": "tcp://buildkitd.binder.svc:1234"},
    )


def test_golden() -> None:
    text = (GOLDEN / "redaction_in.txt").read_text().replace("{venv}", sys.prefix)
    redactions = redactions_for(golden_settings(), service_env=ENV)
    out = "\n".join(redact(line, redactions) for line in text.splitlines()) + "\n"
    expected = GOLDEN / "redaction_out.txt"
    if not expected.exists():  # pragma: no cover - writing a new golden file is deliberate
        expected.write_text(out)
        pytest.fail(f"wrote {expected}; check it and commit it")
    assert out == expected.read_text()


def test_every_form_of_every_secret_is_gone() -> None:
    redactions = redactions_for(golden_settings(), service_env={})
    raw = ["registry-pa55word", "webhook-s3cret", "hub-api-token", "ghp_forgetoken", 'p@ss/w"ord']
    pairs = ["pusher:registry-pa55word", "x-access-token:ghp_forgetoken", 'bot:p@ss/w"ord']
    forms = {form for secret in raw for form in secret_forms(secret)}
    forms |= {base64.b64encode(pair.encode()).decode() for pair in pairs}
    assert len(forms) >= 15
    for form in forms:
        assert redact(f"x{form}y", redactions) == f"x{SECRET}y", form


def test_a_secret_inside_a_longer_one_does_not_leave_the_rest_behind() -> None:
    settings = load_settings(
        None, webhooks={"github_secret": "abcdef", "gitlab_token": "abcdef-and-more"}
    )
    assert redact("t=abcdef-and-more", redactions_for(settings, service_env={})) == "t=***"


def test_build_directories_and_the_state_directory(tmp_path: Path) -> None:
    settings = load_settings(None, state_path=tmp_path / "state" / "builds.sqlite")
    redactions = redactions_for(settings, service_env={})
    state = tmp_path / "state"
    assert redact(f"{state}/builds/abc/tmp/x", redactions) == f"{BUILD_DIR}/tmp/x"
    assert redact(f"'{state}/builds/abc'", redactions) == f"'{BUILD_DIR}'"
    assert redact(f"{state}/builds.sqlite", redactions) == "<state dir>/builds.sqlite"
    assert redact(f"{state}-other", redactions) == f"{state}-other"


def test_shallow_directories_are_left_alone() -> None:
    # a state file in / or /tmp: replacing "/tmp" would mangle the builds' own paths
    redactions = redactions_for(load_settings(None, state_path="/tmp/x.sqlite"), service_env={})
    assert redact("/tmp/builds/abc and /tmp/y", redactions) == "/tmp/builds/abc and /tmp/y"


def test_a_registry_url_of_the_images_host_is_not_hidden() -> None:
    settings = load_settings(
        None,
        image_prefix="registry.example.org/b-",
        registry={"url": "https://registry.example.org"},
    )
    text = "pushing registry.example.org/b-x:1 to https://registry.example.org"
    assert redact(text, redactions_for(settings, service_env={})) == text
    internal = load_settings(
        None, image_prefix="registry.example.org/b-", registry={"url": "http://registry.svc:5000"}
    )
    redactions = redactions_for(internal, service_env={})
    assert redact("HEAD http://registry.svc:5000/v2/", redactions) == "HEAD <registry>/v2/"


def test_docker_config_secrets() -> None:
    auth = base64.b64encode(b"user:rotated-token").decode()
    content = f'{{"auths": {{"r.example": {{"auth": "{auth}"}}}}}}'.encode()
    assert {auth, "rotated-token"} <= docker_config_secrets(content)
    assert docker_config_secrets(b"not json") == set()
    assert docker_config_secrets(b'{"auths": {"r": {"auth": "%%%"}}}') == {"%%%"}


def test_the_redactor_reads_a_rotated_docker_config_again(tmp_path: Path) -> None:
    config = tmp_path / "config.json"

    def write(user: str, token: str) -> str:
        auth = base64.b64encode(f"{user}:{token}".encode()).decode()
        config.write_text(f'{{"auths": {{"r.example": {{"auth": "{auth}"}}}}}}')
        return auth

    first = write("u", "first-token")
    redactor = Redactor(
        load_settings(None, image_prefix="r.example/b-", registry={"docker_config": config})
    )
    assert redactor(f"a {first} first-token") == "a *** ***"
    second = write("u", "second-token-longer")
    assert redactor(f"b {second} second-token-longer") == "b *** ***"


def test_a_buildkit_daemon_on_a_shared_address_hides_its_port_not_the_host() -> None:
    settings = load_settings(
        None, image_prefix="127.0.0.1:5000/b-", buildkit={"host": "tcp://127.0.0.1:1234"}
    )
    redactions = redactions_for(settings, service_env={})
    text = "pushing 127.0.0.1:5000/b-x:1 through tcp://127.0.0.1:1234 (127.0.0.1:1234)"
    assert (
        redact(text, redactions) == "pushing 127.0.0.1:5000/b-x:1 through <buildkit> (<buildkit>)"
    )
