"""The clean-up after a build on the Docker daemon (issue 26): the Engine API requests
it makes, and the setting that bounds Docker's build cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.executors.local.docker_cleanup import (
    DockerRequest,
    build_prune_request,
    clean_up_after_build,
    remove_image_request,
)
from jobs.settings import ConfigError, load_settings
from jobs.settings.building import DEFAULT_DOCKER_BUILD_CACHE_BYTES

PREFIX = "127.0.0.1:5000/t-"


@pytest.mark.parametrize(
    ("api_version", "parameter"),
    [
        ("1.41", "keep-storage"),  # Docker 20.10
        ("1.47", "keep-storage"),
        ("1.48", "max-used-space"),  # keep-storage deprecated
        ("1.52", "max-used-space"),
        ("2.0", "max-used-space"),
        (None, "keep-storage"),  # no Api-Version header
        ("garbage", "keep-storage"),
    ],
)
def test_the_prune_names_the_bound_as_the_daemon_reads_it(
    api_version: str | None, parameter: str
) -> None:
    assert build_prune_request(api_version, 123) == DockerRequest(
        "POST", "/build/prune", {"all": "1", parameter: "123"}
    )


def test_the_image_is_removed_by_its_name_and_never_forced() -> None:
    request = remove_image_request("127.0.0.1:5000/t-abc-repo:0123abcd")
    assert request == DockerRequest(
        "DELETE", "/images/127.0.0.1:5000/t-abc-repo:0123abcd", {}, missing_ok=True
    )
    assert "force" not in request.params


def test_the_build_cache_is_bounded_by_default() -> None:
    settings = load_settings(None, image_prefix=PREFIX)
    assert settings.local.docker_build_cache_bytes == DEFAULT_DOCKER_BUILD_CACHE_BYTES > 0


def test_the_bound_can_be_zero() -> None:
    settings = load_settings(None, image_prefix=PREFIX, local={"docker_build_cache_bytes": 0})
    assert settings.local.docker_build_cache_bytes == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-1, "greater than or equal to 0"), ("10GB", "valid integer"), (1.5, "valid integer")],
)
def test_a_bad_bound_is_refused_naming_the_setting(value: object, reason: str) -> None:
    with pytest.raises(ConfigError, match=rf"local\.docker_build_cache_bytes: .*{reason}"):
        load_settings(None, image_prefix=PREFIX, local={"docker_build_cache_bytes": value})


@pytest.mark.anyio
async def test_a_daemon_that_is_not_there_is_logged_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path / 'no-such.sock'}"}
    failures = await clean_up_after_build(env, f"{PREFIX}repo:abc", 123, within=1.0)
    assert [failure.split(" at ")[0] for failure in failures] == [
        "DELETE /images/127.0.0.1:5000/t-repo:abc",
        "POST /build/prune",
    ]
    assert all("no-such.sock" in failure for failure in failures)
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 2
