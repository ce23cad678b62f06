"""webhook.profiles: the profiles ``GET /api/v1/profiles`` answers, run through
KubeSpawner's own profile handling (form, form data, validation, overrides), as the
hub would."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.settings import ConfigError, Settings, load_settings
from webhook.profiles import (
    choice_slug,
    home_copy_command,
    image_validation_regex,
    profiles_from_catalog,
    ref_label,
)

PREFIX = "registry.example.org/binder-"
REPO = "https://github.com/my-org/analysis"
OTHER = "https://gitlab.com/group/sub/other"


def image(slug: str, sha: str, ref: str, kind: str, when: float) -> dict[str, Any]:
    return {
        "image": f"{PREFIX}{slug}:{sha}",
        "sha": sha,
        "ref": ref,
        "ref_kind": kind,
        "built_at": when,
        "build_id": sha[:32],
    }


A, B, C, D, E = ("a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40)
CATALOG: dict[str, Any] = {
    "repos": [
        {
            "repo": REPO,
            "images": [  # newest first, as /api/v1/images answers
                image("my-2dorg-analysis-1234abcd", B, "refs/heads/main", "branch", 5.0),
                image("my-2dorg-analysis-1234abcd", C, "refs/tags/v1.0", "tag", 4.0),
                image("my-2dorg-analysis-1234abcd", A, "refs/heads/main", "branch", 3.0),
                image("my-2dorg-analysis-1234abcd", D, D, "commit", 2.0),
            ],
        },
        {
            "repo": OTHER,
            "images": [image("group-2dsub-other-5678ef01", E, "HEAD", "head", 1.0)],
        },
    ]
}


def hub(**profiles: Any) -> Settings:
    """Settings with ``hub_profiles`` set to ``profiles``."""
    return load_settings(
        None,
        image_prefix=PREFIX,
        repo2docker={"target_repo_dir": "/srv/repo"},
        hub_profiles=profiles,
    )


def only(repo: str) -> dict[str, Any]:
    """The part of ``CATALOG`` of ``repo``."""
    return {"repos": [entry for entry in CATALOG["repos"] if entry["repo"] == repo]}


@pytest.fixture(scope="module")
def kubespawner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[Any]]:
    """The KubeSpawner class. A KubeSpawner loads a kubeconfig when made, from the
    ``$KUBECONFIG`` its client read at import; this one names a cluster nothing here
    contacts (profile handling makes no API call), so kubespawner is imported after it
    is set."""
    config = tmp_path_factory.mktemp("kube") / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBECONFIG", str(config))
        from kubespawner import KubeSpawner

        yield KubeSpawner


def spawner_with(kubespawner: type[Any], profiles: list[dict[str, Any]]) -> Any:
    async def profile_list(spawner: Any) -> list[dict[str, Any]]:
        return profiles

    spawner = kubespawner(_mock=True)
    spawner.profile_list = profile_list
    return spawner


async def spawn_with(
    kubespawner: type[Any], profiles: list[dict[str, Any]], formdata: dict[str, list[str]]
) -> str:
    """The image KubeSpawner would start after the spawn form posted ``formdata``."""
    spawner = spawner_with(kubespawner, profiles)
    spawner.user_options = spawner.options_from_form(formdata)
    await spawner.load_user_options()
    return str(spawner.image)


def test_the_newest_image_of_each_branch_and_tag_labelled_by_repo_and_ref() -> None:
    main = choice_slug(REPO, "refs/heads/main", "main")
    tag = choice_slug(REPO, "refs/tags/v1.0", "v1.0")
    head = choice_slug(OTHER, "HEAD", "default branch")
    assert profiles_from_catalog(CATALOG, hub()) == [
        {
            "display_name": "Prebuilt repository images",
            "description": "Images built by binderhub-service, newest first",
            "slug": "binderhub-service",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        main: {
                            "display_name": "my-org/analysis (main)",
                            "description": f"{PREFIX}my-2dorg-analysis-1234abcd:{B}",
                            "kubespawner_override": {
                                "image": f"{PREFIX}my-2dorg-analysis-1234abcd:{B}"
                            },
                        },
                        tag: {
                            "display_name": "my-org/analysis (v1.0)",
                            "description": f"{PREFIX}my-2dorg-analysis-1234abcd:{C}",
                            "kubespawner_override": {
                                "image": f"{PREFIX}my-2dorg-analysis-1234abcd:{C}"
                            },
                        },
                        head: {
                            "display_name": "group/sub/other (default branch)",
                            "description": f"{PREFIX}group-2dsub-other-5678ef01:{E}",
                            "kubespawner_override": {
                                "image": f"{PREFIX}group-2dsub-other-5678ef01:{E}"
                            },
                        },
                    },
                }
            },
        }
    ]
    assert main == "my-org-analysis-main-" + main[-8:]


def test_kinds_narrow_the_choices() -> None:
    (profile,) = profiles_from_catalog(only(REPO), hub(ref_kinds=["tag", "commit"]))
    choices = profile["profile_options"]["image"]["choices"]
    assert [c["display_name"] for c in choices.values()] == [
        "my-org/analysis (v1.0)",
        f"my-org/analysis ({D[:10]})",
    ]
    assert profiles_from_catalog(only(OTHER), hub(ref_kinds=["tag"])) == []
    assert profiles_from_catalog({"repos": []}, hub()) == []


@pytest.mark.anyio
async def test_kubespawner_renders_the_form_and_starts_the_chosen_image(
    kubespawner: type[Any],
) -> None:
    profiles = profiles_from_catalog(CATALOG, hub(any_image_choice=True))
    spawner = spawner_with(kubespawner, profiles)
    form = await spawner.options_form(spawner)
    assert "my-org/analysis (v1.0)" in form
    assert "group/sub/other (default branch)" in form

    tag = choice_slug(REPO, "refs/tags/v1.0", "v1.0")
    field = "profile-option-binderhub-service--image"
    chosen = await spawn_with(
        kubespawner, profiles, {"profile": ["binderhub-service"], field: [tag]}
    )
    assert chosen == f"{PREFIX}my-2dorg-analysis-1234abcd:{C}"
    # nothing chosen: KubeSpawner's default, the first (newest) choice
    default = await spawn_with(kubespawner, profiles, {"profile": ["binderhub-service"]})
    assert default == f"{PREFIX}my-2dorg-analysis-1234abcd:{B}"


@pytest.mark.anyio
async def test_a_free_text_image_must_be_one_of_ours(kubespawner: type[Any]) -> None:
    profiles = profiles_from_catalog(CATALOG, hub(any_image_choice=True))
    field = "profile-option-binderhub-service--image--unlisted-choice"
    ours = f"{PREFIX}someone-2drepo-0000aaaa:{A}"
    assert (
        await spawn_with(kubespawner, profiles, {"profile": ["binderhub-service"], field: [ours]})
        == ours
    )
    for theirs in (
        f"docker.io/library/python:3.12#{PREFIX}",
        f"evil.example.org/{PREFIX}x:1",
        f"{PREFIX}../../other/image:1",
        f"{PREFIX}x:1; rm -rf /",
        f"{PREFIX}x",
    ):
        with pytest.raises(ValueError, match="failed validation regex"):
            await spawn_with(
                kubespawner, profiles, {"profile": ["binderhub-service"], field: [theirs]}
            )


def test_the_validation_regex_reads_the_same_in_javascript() -> None:
    """fancy-profiles checks the free-text choice in the browser with ``RegExp``."""
    regex = image_validation_regex("127.0.0.1:5000/binder-")
    samples = [
        "127.0.0.1:5000/binder-my-2dorg-repo-1234abcd:" + A,
        "127.0.0.1:5000/binder-x@sha256:" + "0" * 64,
        "127.0.0.1:5000/binder-../x:1",
        "127.0.0.1X5000/binder-x:1",
        "quay.io/jupyter/base-notebook:latest",
    ]
    python = [bool(re.match(regex, s)) for s in samples]
    assert python == [True, True, False, False, False]
    script = (
        "const [re, samples] = JSON.parse(process.argv[1]);"
        "for (const flags of ['', 'u']) {"
        " console.log(JSON.stringify(samples.map((s) => new RegExp(re, flags).test(s))));"
        "}"
    )
    out = subprocess.run(
        ["node", "-e", script, json.dumps([regex, samples])],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert [json.loads(line) for line in out] == [python, python]


def test_copying_into_home_adds_a_start_hook_per_choice() -> None:
    (profile,) = profiles_from_catalog(only(OTHER), hub(copy_repo_to_home="/home/jovyan"))
    (choice,) = profile["profile_options"]["image"]["choices"].values()
    assert choice["kubespawner_override"]["lifecycle_hooks"] == {
        "postStart": {"exec": {"command": home_copy_command("/srv/repo", "/home/jovyan/other")}}
    }


def test_the_settings_shape_the_profile_list() -> None:
    settings = load_settings(
        None,
        image_prefix=PREFIX,
        repo2docker={"target_repo_dir": "/srv/content"},
        hub_profiles={
            "display_name": "Course images",
            "description": "Built on every push",
            "slug": "course",
            "ref_kinds": ["tag"],
            "any_image_choice": True,
            "copy_repo_to_home": "/home/jovyan",
            "kubespawner_override": {"mem_limit": "2G"},
        },
    )
    tag = choice_slug(REPO, "refs/tags/v1.0", "v1.0")
    assert profiles_from_catalog(CATALOG, settings) == [
        {
            "display_name": "Course images",
            "description": "Built on every push",
            "slug": "course",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        tag: {
                            "display_name": "my-org/analysis (v1.0)",
                            "description": f"{PREFIX}my-2dorg-analysis-1234abcd:{C}",
                            "kubespawner_override": {
                                "image": f"{PREFIX}my-2dorg-analysis-1234abcd:{C}",
                                "lifecycle_hooks": {
                                    "postStart": {
                                        "exec": {
                                            "command": home_copy_command(
                                                "/srv/content", "/home/jovyan/analysis"
                                            )
                                        }
                                    }
                                },
                            },
                        }
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "display_name": f"Another image built by this service ({PREFIX}…)",
                        "validation_regex": image_validation_regex(PREFIX),
                        "kubespawner_override": {"image": "{value}"},
                    },
                }
            },
            "kubespawner_override": {"mem_limit": "2G"},
        }
    ]
    # the defaults: branches, tags and the default branch; no free text; nothing copied
    (default,) = profiles_from_catalog(CATALOG, load_settings(None, image_prefix=PREFIX))
    assert default == profiles_from_catalog(CATALOG, hub())[0]
    assert profiles_from_catalog({"repos": []}, load_settings(None)) == []


def test_copying_home_without_a_folder_to_copy_from_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"copy_repo_to_home needs repo2docker\.target_repo_dir"):
        load_settings(None, hub_profiles={"copy_repo_to_home": "/home/jovyan"})
    with pytest.raises(ConfigError, match=r"hub_profiles\.copy_repo_to_home: String should match"):
        load_settings(
            None,
            repo2docker={"target_repo_dir": "/srv/repo"},
            hub_profiles={"copy_repo_to_home": "home/jovyan"},
        )


def test_ref_labels() -> None:
    assert ref_label("refs/heads/feature/x", "branch", A) == "feature/x"
    assert ref_label("refs/tags/v2", "tag", A) == "v2"
    assert ref_label("HEAD", "head", A) == "default branch"
    assert ref_label(A, "commit", A) == A[:10]
    assert ref_label("refs/pull/1/head", "other", A) == "refs/pull/1/head"


def test_the_start_hook_in_the_docs_is_the_copy_command() -> None:
    page = (Path(__file__).parents[2] / "docs" / "home-folder.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    (hook,) = [yaml.safe_load(block) for block in blocks if "lifecycleHooks" in block]
    command = hook["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert command == home_copy_command("/srv/repo", "/home/jovyan/repo")


SNIPPET = Path(__file__).parents[2] / "docs" / "hub-extra-config.py"


def run_snippet(config: Any) -> None:
    """The snippet as z2jh runs ``hub.extraConfig``: ``exec`` with the hub's ``c``."""
    exec(compile(SNIPPET.read_text(), str(SNIPPET), "exec"), {"c": config})  # noqa: S102


def test_the_snippet_is_one_file_that_the_docs_include_and_the_chart_prints() -> None:
    root = Path(__file__).parents[2]
    assert SNIPPET.resolve() == root / "chart" / "files" / "hub-extra-config.py"
    assert "```{literalinclude} hub-extra-config.py" in (root / "docs" / "launching.md").read_text()
    assert "hub-extra-config.py" in (root / "chart" / "templates" / "NOTES.txt").read_text()


def test_the_snippet_names_what_the_hub_config_lacks() -> None:
    from traitlets.config import Config

    for services in (
        [],
        [{"name": "binder", "api_token": "t"}],
        [{"name": "binder", "url": "http://binder"}],
    ):
        config = Config()
        config.JupyterHub.services = services
        with pytest.raises(ValueError, match=r"hub\.services\.binder needs url and apiToken"):
            run_snippet(config)
    config = Config()
    config.JupyterHub.services = [{"name": "binder", "url": "http://binder", "api_token": "t"}]
    run_snippet(config)
    assert callable(config.KubeSpawner.profile_list)
