"""A product module over 400 lines, or a function over 60, does two jobs: split it.

Product modules are those of ``jobs/``, ``webhook/`` and ``builder/``; tests may be
longer. A function's length counts its whole definition, docstring and decorators
included, so a long docstring is a sign too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

PRODUCT = ("jobs", "webhook", "builder/binderhub_service_builder")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def product_modules(root: Path = ROOT) -> list[Path]:
    return sorted(path for folder in PRODUCT for path in (root / folder).rglob("*.py"))


def long_functions(path: Path, root: Path = ROOT) -> Iterator[str]:
    """``file:line name (N lines)`` of each function of ``path`` longer than
    ``MAX_FUNCTION_LINES``, nested ones and methods included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = (node.end_lineno or node.lineno) - first + 1
            if lines > MAX_FUNCTION_LINES:
                yield f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)"


def long_modules(paths: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(root)} ({lines} lines)")
    return found


def test_no_product_module_is_over_400_lines() -> None:
    modules = product_modules()
    assert len(modules) > 50
    assert long_modules(modules) == []


def test_no_product_function_is_over_60_lines() -> None:
    assert [hit for path in product_modules() for hit in long_functions(path)] == []


def test_the_check_measures_what_it_says(tmp_path: Path) -> None:
    body = "\n".join(f"    x = {i}" for i in range(58))
    nested = "\n".join(f"    {line}" for line in body.splitlines())
    sample = tmp_path / "sample.py"
    sample.write_text(
        f"def short():\n{body}\n    return x\n\n\n"  # 60 lines
        f"@decorated\ndef long():\n{body}\n    return x\n\n\n"  # 61 with its decorator
        f"class C:\n    async def method(self):\n{nested}\n        y = 1\n        return y\n"
    )
    assert list(long_functions(sample, tmp_path)) == [
        "sample.py:64 long (61 lines)",
        "sample.py:127 method (61 lines)",
    ]
    assert long_modules([sample], tmp_path) == []
    sample.write_text("x = 1\n" * 401)
    assert long_modules([sample], tmp_path) == ["sample.py (401 lines)"]
