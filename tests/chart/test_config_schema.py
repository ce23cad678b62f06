"""``config:`` is checked by the chart's schema, generated from the settings model
(jobs/settings/schema.py): a misspelt or invalid setting stops ``helm lint --strict`` and
``helm install`` with its name, instead of a pod that crashes at start (issue 14, item 7)."""

from __future__ import annotations

import subprocess

import pytest

from .test_chart_static import CHART, NAMESPACE, run_helm

TYPOS = [
    ("config.bse_path=/services/binder/", "at '/config': additional properties 'bse_path'"),
    (
        "config.jupyterhub.enabeld=true",
        "at '/config/jupyterhub': additional properties 'enabeld'",
    ),
    ("config.hub_profiles.slug=Not_A_Slug", "at '/config/hub_profiles/slug'"),
    ("config.limits.max_concurrent_builds=0", "at '/config/limits/max_concurrent_builds'"),
    ("config.executor=docker", "at '/config/executor'"),
]


def helm_(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(helm, *args)  # the chart as released


@pytest.mark.parametrize(("setting", "message"), TYPOS)
def test_lint_and_install_name_the_bad_setting(helm: str, setting: str, message: str) -> None:
    lint = helm_(helm, "lint", "--strict", str(CHART), "--set", setting)
    assert lint.returncode != 0
    assert message in lint.stdout + lint.stderr
    install = helm_(
        helm,
        "install",
        "rel",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "--set",
        setting,
    )
    assert install.returncode != 0
    assert message in install.stderr


def test_good_settings_pass_including_a_base_path_without_its_slash(helm: str) -> None:
    lint = helm_(
        helm,
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "config.base_path=/services/binder",
        "--set",
        "config.jupyterhub.enabled=true",
        "--set",
        "config.hub_profiles.copy_repo_to_home=/home/jovyan",
        "--set",
        "config.repo2docker.target_repo_dir=/srv/repo",
        "--set-json",
        'config.auth.tokens=[{"name": "hub", "sha256": "'
        + "0" * 64
        + '", "scopes": ["builds:read"]}]',
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
