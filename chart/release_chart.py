"""Make a copy of the chart a release: its values name the release's images.

``make release`` (scripts/release.sh) copies ``chart/`` and runs, on the copy,

    python3 chart/release_chart.py --registry REGISTRY COPY

which writes ``REGISTRY/binderhub-service`` and ``REGISTRY/binderhub-service-builder`` into
the copy's ``values.yaml`` (``image.repository``, ``builder.image.repository``). The tags stay
empty: they default to the chart's ``appVersion``, which ``helm package --app-version``
sets, so one version names the chart and both images. Only the two lines change, so the
released ``values.yaml`` keeps its comments (``helm show values`` shows them).

Standard library only (it runs in CI before any environment exists). Not part of the
packaged chart (``.helmignore``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

SERVICE_IMAGE = "binderhub-service"
BUILDER_IMAGE = "binderhub-service-builder"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?P<rest>.*)$")
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


class ReleaseError(ValueError):
    """The registry or the values file cannot make a release; the message says why."""


def released_values(registry: str) -> dict[str, Any]:
    """The values a release to ``registry`` (``host[:port][/path]``) writes, as a values
    file would hold them. Raises ``ReleaseError`` for a registry that is not one."""
    registry = registry.rstrip("/")
    if not _REGISTRY.match(registry):
        raise ReleaseError(
            f"REGISTRY={registry!r} is not a registry: expected host[:port][/path], lower case, "
            "without a scheme (e.g. ghcr.io/my-org)"
        )
    return {
        "image": {"repository": f"{registry}/{SERVICE_IMAGE}"},
        "builder": {"image": {"repository": f"{registry}/{BUILDER_IMAGE}"}},
    }


def _leaves(values: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    out: dict[tuple[str, ...], str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_leaves(value, (*path, key)))
        else:
            out[(*path, key)] = str(value)
    return out


def stamp_values(text: str, values: dict[str, Any]) -> str:
    """``text`` (a values.yaml in block style) with each leaf of ``values`` written over
    its empty string: ``repository: ""`` becomes ``repository: "<value>"``. Pure.

    Raises ``ReleaseError`` when a leaf's key is missing, appears twice, or is not
    ``""`` (a chart that names images already is not stamped again)."""
    wanted = _leaves(values)
    found: dict[tuple[str, ...], int] = {}
    stack: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        match = _KEY.match(line.rstrip("\n"))
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(key for _, key in stack), match["key"])
        stack.append((indent, match["key"]))
        if path not in wanted:
            continue
        dotted = ".".join(path)
        if path in found:
            raise ReleaseError(f"{dotted} appears twice in the values file")
        value, _, comment = match["rest"].partition("#")
        if value.strip() != '""':
            raise ReleaseError(f'{dotted} is {value.strip()!r} in the values file, not ""')
        comment = f"  #{comment}" if comment else ""
        lines[number] = f"{match['indent']}{match['key']}: {json.dumps(wanted[path])}{comment}\n"
        found[path] = number
    missing = [".".join(path) for path in wanted if path not in found]
    if missing:
        raise ReleaseError(f"not in the values file: {', '.join(missing)}")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", help="host[:port][/path] of the images")
    parser.add_argument("--check-registry", help="only check that this registry is one")
    parser.add_argument("chart", type=Path, nargs="?", help="the copy of the chart to stamp")
    args = parser.parse_args(argv)
    try:
        if args.check_registry is not None:
            released_values(args.check_registry)
            return 0
        if args.registry is None or args.chart is None:
            parser.error("--registry and the chart are needed")
        path = args.chart / "values.yaml"
        path.write_text(stamp_values(path.read_text(), released_values(args.registry)))
    except (OSError, ReleaseError) as e:
        print(f"release_chart: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
