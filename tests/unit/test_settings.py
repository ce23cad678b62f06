from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobs.settings import ConfigError, load_settings
from jobs.settings.docs import render

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BINDERHUB_SERVICE_CONFIG", raising=False)
    settings = load_settings()
    assert settings.executor == "local"
    assert settings.listen == "127.0.0.1:8080"
    assert settings.registry_url == "http://127.0.0.1:5000"


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "image_prefix: registry.example.org/binder/\n"
        "registry:\n  username: builder\n  password: from-file\n"
        "limits:\n  max_concurrent_builds: 4\n"
    )
    monkeypatch.setenv("BINDERHUB_SERVICE_REGISTRY__PASSWORD", "from-env")
    monkeypatch.setenv("BINDERHUB_SERVICE_LIMITS__BUILD_TIMEOUT", "60")
    settings = load_settings(config)
    assert settings.registry.password is not None
    assert settings.registry.password.get_secret_value() == "from-env"
    assert settings.registry.username == "builder"
    assert settings.limits.max_concurrent_builds == 4
    assert settings.limits.build_timeout == 60
    assert settings.registry_url == "https://registry.example.org"
    # the secret never shows in a repr, a str or a dump
    assert "from-env" not in repr(settings)
    assert "from-env" not in str(settings)
    assert "from-env" not in settings.model_dump_json()


def test_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yml"
    config.write_text("listen: 0.0.0.0:9000\n")
    monkeypatch.setenv("BINDERHUB_SERVICE_CONFIG", str(config))
    assert load_settings().listen_port == 9000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("registry:\n  pasword: x\n", "registry.pasword: unknown setting"),
        ("image_prefx: x\n", "image_prefx: unknown setting"),
        ("limits:\n  max_concurrent_builds: 0\n", "limits.max_concurrent_builds"),
        ("listen: nowhere\n", "listen: Value error, must be HOST:PORT"),
        ("image_prefix: Binder\n", "image_prefix: Value error, must start with a registry host"),
        ("executor: cloud\n", "executor: Input should be 'local'"),
        ("- a list\n", "must hold a mapping"),
        ("key: [unclosed\n", "not valid YAML"),
        (
            "kubernetes:\n  git_credentials_secret: {name: git, key: c}\n",
            "kubernetes: Value error, git_credentials_secret was removed (issue 20): a build "
            "pod gets the one credential of forges.credentials or forges.hosts",
        ),
    ],
)
def test_invalid_settings_fail_naming_the_key(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert message in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yml")


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "run: python -m jobs.settings.docs --write docs/configuration.md"
    )


def test_every_setting_is_documented() -> None:
    text = render()
    for key in (
        "image_prefix",
        "registry.password",
        "repo2docker.extra_args",
        "limits.build_timeout",
        "allowed_repos",
        "state_path",
        "listen",
    ):
        assert f"`{key}`" in text


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("/services/binder/", "/services/binder/"),
        ("/services/binder", "/services/binder/"),
        ("services/binder", "/services/binder/"),
        ("binder/", "/binder/"),
        ("/", "/"),
    ],
)
def test_base_path_is_normalised(given: str, normalised: str) -> None:
    assert load_settings(None, base_path=given).base_path == normalised


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "https://hub.example/services/binder/",
        "//hub.example/",
        "/services//binder",
        "/a b/",
        "/a?x=1",
        "/a#top",
    ],
)
def test_a_base_path_that_is_not_a_path_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"base_path: .*a URL path such as /services/binder/"):
        load_settings(None, base_path=bad)


def test_a_retention_policy_that_keeps_nothing_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"retention\.keep_per_ref: .*would keep nothing"):
        load_settings(None, retention={"keep_per_ref": 0})
    with pytest.raises(ConfigError, match=r"retention\.keep_days"):
        load_settings(None, retention={"keep_days": 0})
    assert load_settings(None).retention.keep_per_ref == 3


def test_retention_outlasts_every_replica_s_cached_answer() -> None:
    """A replica answers "exists" from memory for registry.cache_seconds: an image
    requested then must not be deleted before that memory ends (issue 26)."""
    with pytest.raises(ConfigError, match=r"keep_days \(0\.01 days\) is shorter than registry"):
        load_settings(None, retention={"keep_days": 0.01})
    settings = load_settings(None, retention={"keep_days": 0.01}, registry={"cache_seconds": 60})
    assert settings.retention.keep_days == 0.01


def test_repos_entries_may_be_records_in_any_form_users_give() -> None:
    settings = load_settings(
        None,
        repos=[
            {"url": "https://GitHub.com/Org/Repo.git"},
            {"url": " 10.5281/zenodo.3242074 "},
            {"url": "https://zenodo.org/records/3242074"},
            {"url": "https://doi.org/10.6084/m9.figshare.9782777"},
            {"provider": "zenodo", "spec": "10.5281%2Fzenodo.3242074"},
            {"provider": "figshare", "spec": "10.6084/m9.figshare.9782777.v1"},
        ],
    )
    assert [(repo.url, repo.is_record) for repo in settings.repos] == [
        ("https://github.com/org/repo", False),
        ("10.5281/zenodo.3242074", True),
        ("https://zenodo.org/records/3242074", True),
        ("https://doi.org/10.6084/m9.figshare.9782777", True),
        ("10.5281/zenodo.3242074", True),
        ("10.6084/m9.figshare.9782777.v1", True),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "10.5281/"}, "repos.0.url: Value error, '10.5281/' is not a DOI"),
        ({"url": "10.5281/zenodo.1", "tags": []}, "'10.5281/zenodo.1' is a record: it has "),
        ({"url": "10.5281/zenodo.1", "branches": ["main"]}, "is a record: it has versions"),
        (
            {"url": "10.5281/zenodo.1", "provider": "zenodo", "spec": "10.5281/zenodo.1"},
            "repos.0: Value error, give url, or provider and spec, not both",
        ),
        ({"provider": "zenodo"}, "provider and spec go together"),
        ({"provider": "nope", "spec": "x"}, "provider 'nope': a repos entry's provider is one"),
        ({"provider": "gh", "spec": "o/r/main"}, "give a git repository as url"),
        ({"provider": "zenodo", "spec": "10.6084/m9.figshare.1"}, "a zenodo spec is zenodo/<DOI"),
        ({}, "give url (a repository or a record), or provider and spec"),
        ({"url": "ftp://example.org/r"}, "scheme 'ftp' is not allowed"),
    ],
)
def test_a_bad_repos_entry_is_refused_naming_it(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, repos=[entry])
    assert message in str(error.value)
