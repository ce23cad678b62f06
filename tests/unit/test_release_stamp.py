"""The release's stamp in the service's image names the default builder image (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.factory import check_builder_image
from jobs.release import released_builder_image
from jobs.settings import ConfigError, Settings


def test_the_stamp_names_the_builder_image(tmp_path: Path) -> None:
    stamp = tmp_path / "release.json"
    stamp.write_text(
        json.dumps({"version": "0.9.1", "builder_image": "reg.example/bhs-builder:0.9.1"})
    )
    assert released_builder_image(stamp) == "reg.example/bhs-builder:0.9.1"


@pytest.mark.parametrize(
    "content",
    [None, "", "not json", "[]", '{"version": "1.0.0"}', '{"builder_image": 3}'],
    ids=["missing", "empty", "not-json", "not-an-object", "no-image", "not-a-string"],
)
def test_no_usable_stamp_is_no_builder_image(tmp_path: Path, content: str | None) -> None:
    stamp = tmp_path / "release.json"
    if content is not None:
        stamp.write_text(content)
    assert released_builder_image(stamp) == ""


def test_a_service_that_was_not_released_has_no_default_builder_image() -> None:
    # the tests run from a checkout: no stamp next to the interpreter
    assert Settings().kubernetes.builder_image == ""


def test_the_kubernetes_executor_needs_a_builder_image() -> None:
    with pytest.raises(ConfigError) as refused:
        check_builder_image(Settings(executor="kubernetes"))
    assert "kubernetes.builder_image is not set" in str(refused.value)
    assert "make release" in str(refused.value)
    named = Settings.model_validate(
        {"executor": "kubernetes", "kubernetes": {"builder_image": "reg.example/b:1"}}
    )
    check_builder_image(named)  # no error
