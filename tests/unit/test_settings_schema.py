"""jobs.settings.schema: the conversion to what Helm reads (golden), and the file's check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from jobs.settings.schema import COMMENT, helm_schema, main, updated_values_schema

ROOT = Path(__file__).resolve().parents[2]


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    name: str = Field(pattern=r"^[a-z]+$")
    """A name."""
    password: SecretStr | None = None
    """A secret."""


class Outer(BaseModel):
    """The model's own description."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    inner: Inner | None = None
    """One inner."""
    many: list[Inner] = []
    """Several."""
    mode: Literal["a", "b"] = "a"
    """A mode."""
    path: Path = Path("x.sqlite")
    """A file."""
    count: int = Field(default=1, ge=1)
    """How many."""


INNER = {
    "additionalProperties": False,
    "properties": {
        "name": {"description": "A name.", "pattern": "^[a-z]+$", "type": "string"},
        "password": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "A secret.",
        },
    },
    "required": ["name"],
    "type": "object",
}


def test_refs_are_inlined_and_what_helm_does_not_check_goes() -> None:
    assert helm_schema(Outer.model_json_schema(), "Given.") == {
        "$comment": COMMENT,
        "description": "Given.",
        "additionalProperties": False,
        "type": "object",
        "properties": {
            "inner": {"anyOf": [INNER, {"type": "null"}], "description": "One inner."},
            "many": {"description": "Several.", "items": INNER, "type": "array"},
            "mode": {"description": "A mode.", "enum": ["a", "b"], "type": "string"},
            "path": {"description": "A file.", "type": "string"},
            "count": {"description": "How many.", "minimum": 1, "type": "integer"},
        },
    }


def test_a_ref_that_cannot_be_inlined_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot inline"):
        helm_schema({"properties": {"a": {"$ref": "other.json#/x"}}}, "d")
    recursive = {"$defs": {"N": {"properties": {"n": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}
    with pytest.raises(ValueError, match="recursive"):
        helm_schema(recursive, "d")


def test_a_setting_named_like_a_keyword_is_kept() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string", "title": "Title"}}}
    assert helm_schema(schema, "d")["properties"] == {"title": {"type": "string"}}


def test_the_chart_schema_is_current_and_the_check_finds_a_stale_one(tmp_path: Path) -> None:
    chart_schema = ROOT / "chart" / "values.schema.json"
    assert main(["--check", str(chart_schema)]) == 0
    stale = json.loads(chart_schema.read_text())
    stale["properties"]["config"]["properties"].pop("hub_profiles")
    copy = tmp_path / "values.schema.json"
    copy.write_text(json.dumps(stale))
    assert main(["--check", str(copy)]) == 1
    assert main(["--write", str(copy)]) == 0
    assert json.loads(copy.read_text()) == updated_values_schema(stale)
    assert main(["--check", str(copy)]) == 0
