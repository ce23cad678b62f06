"""The Helm chart's schema for ``config:``, generated from the settings model (issue 14).

The chart passes ``config`` to the service as its settings file, and the service refuses
unknown or invalid settings at start-up; this puts the same refusal in ``helm lint --strict``
and ``helm install``, which name the key. ``python -m jobs.settings.schema --write
chart/values.schema.json`` replaces the ``config`` node of the chart's schema with the
settings model's JSON schema (pydantic ``model_json_schema``) converted to what Helm reads
(``--check`` fails when the file is stale; ``make docs-check`` runs it).

The conversion (``helm_schema``, pure): every ``$ref`` is inlined (the node sits deep inside
another document, and draft-07 has no ``$defs``); ``title``, ``default``, ``format`` and
``writeOnly`` go (Helm applies no defaults, and ``format: path`` or ``password`` is no
check). What the schema cannot say (a base path's spelling, settings that need one another,
values from the environment) the service still checks at start-up, so the schema only ever
refuses what the service would refuse too, never more.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import Settings

DROPPED = frozenset({"title", "default", "format", "writeOnly", "discriminator"})
"""Keywords left out of the chart's schema (see the module's docstring)."""

SUBSCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
"""Keywords whose value maps names (settings, not keywords) to schemas."""

COMMENT = "Generated from the service's settings model: python -m jobs.settings.schema"
"""``$comment`` of the generated node; chart/values_docs.py documents it as one key."""


def _resolve(ref: str, defs: Mapping[str, Any]) -> Any:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise ValueError(f"cannot inline $ref {ref!r}")
    return defs[ref[len(prefix) :]]


def _convert(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"recursive $ref {ref!r} cannot be inlined")
        target = _convert(_resolve(ref, defs), defs, (*seen, ref))
        rest = _convert({k: v for k, v in node.items() if k != "$ref"}, defs, seen)
        return {**target, **rest}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED or key == "$defs":
            continue
        if key in SUBSCHEMA_MAPS:
            out[key] = {name: _convert(sub, defs, seen) for name, sub in value.items()}
        else:
            out[key] = _convert(value, defs, seen)
    return out


def helm_schema(model_schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    """A pydantic ``model_json_schema()`` as a self-contained draft-07 node for Helm.

    Returns ``{"$comment", "description", "type": "object", "additionalProperties",
    "properties", ...}``; raises ``ValueError`` for a ``$ref`` it cannot inline (outside
    ``#/$defs/`` or recursive)."""
    converted = _convert(dict(model_schema), model_schema.get("$defs", {}), ())
    return {"$comment": COMMENT, **converted, "description": description}


def updated_values_schema(values_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The chart's ``values.schema.json`` with its ``config`` node generated anew from
    ``Settings`` (keeping that node's description)."""
    properties = dict(values_schema["properties"])
    description = properties["config"]["description"]
    properties["config"] = helm_schema(Settings.model_json_schema(), description)
    return {**values_schema, "properties": properties}


def render(values_schema: Mapping[str, Any]) -> str:
    return json.dumps(values_schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="FILE", type=Path)
    mode.add_argument("--check", metavar="FILE", type=Path)
    args = parser.parse_args(argv)
    path: Path = args.write or args.check
    current = path.read_text(encoding="utf-8")
    text = render(updated_values_schema(json.loads(current)))
    if args.write:
        path.write_text(text, encoding="utf-8")
        return 0
    if current != text:
        print(
            f"{path} is stale; run: python -m jobs.settings.schema --write {path}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
