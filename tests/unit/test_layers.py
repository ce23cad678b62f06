"""The pipeline (``jobs/``) never imports the HTTP surface (``webhook/``)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def webhook_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line`` of each import of ``webhook`` (or a module under it) in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name.split(".")[0] == "webhook" for name in names):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_jobs_never_imports_webhook() -> None:
    files = sorted((ROOT / "jobs").rglob("*.py"))
    assert len(files) > 10
    assert [hit for path in files for hit in webhook_imports(path)] == []


def test_the_check_finds_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import json\nfrom webhook.api import routes\nimport webhook.errors as e\n"
        "from webhooks import x\ndef f():\n    import webhook\n"
    )
    assert webhook_imports(sample, tmp_path) == ["sample.py:2", "sample.py:3", "sample.py:6"]
