"""docs/layout.py: the code layout of docs/development.md, made from the docstrings."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


def load_layout() -> ModuleType:
    """docs/layout.py, a script outside the packages, as a module."""
    spec = importlib.util.spec_from_file_location("layout", ROOT / "docs" / "layout.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layout = load_layout()


@pytest.mark.parametrize(
    ("docstring", "sentence"),
    [
        ("One line.", "One line."),
        ("Does an image exist? Asked of the registry.", "Does an image exist?"),
        (
            "A summary that\nwraps onto a second line. Then more.",
            "A summary that wraps onto a second line.",
        ),
        ("Names, e.g. ``image_name_for``. Pure.", "Names, e.g. `image_name_for`."),
        ("No full stop\n\nThe next paragraph.", "No full stop"),
        ("Version 2.0 is here. Then.", "Version 2.0 is here."),
    ],
)
def test_a_row_is_the_first_sentence(docstring: str, sentence: str) -> None:
    assert layout.first_sentence(docstring) == sentence


def make_package(root: Path) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""The package. More."""\n')
    (root / "pkg" / "__main__.py").write_text("print()\n")
    (root / "pkg" / "b.py").write_text('"""B: | a pipe."""\n')
    (root / "pkg" / "sub" / "__init__.py").write_text('"""The sub-package."""\n')
    (root / "pkg" / "sub" / "a.py").write_text('"""``A`` things."""\nimport os\n')


def test_every_folder_and_module_is_a_row(tmp_path: Path) -> None:
    make_package(tmp_path)
    assert layout.render_table(tmp_path, ["pkg"]) == (
        "| path | what is in it |\n"
        "| --- | --- |\n"
        "| `pkg/` | The package. |\n"
        "| `pkg/b.py` | B: \\| a pipe. |\n"
        "| `pkg/sub/` | The sub-package. |\n"
        "| `pkg/sub/a.py` | `A` things. |\n"
    )


def test_a_module_without_a_docstring_is_named(tmp_path: Path) -> None:
    make_package(tmp_path)
    (tmp_path / "pkg" / "sub" / "silent.py").write_text("import os\n")
    with pytest.raises(layout.LayoutError, match=r"pkg/sub/silent\.py has no docstring"):
        layout.render_table(tmp_path, ["pkg"])


def test_development_md_holds_the_layout_of_the_code() -> None:
    assert layout.main(["--check", str(ROOT / "docs" / "development.md")]) == 0


def test_a_stale_layout_is_found_and_written(tmp_path: Path) -> None:
    page = tmp_path / "development.md"
    page.write_text(f"# Dev\n\n{layout.BEGIN_MARK}\n| old |\n{layout.END_MARK}\n\nafter\n")
    assert layout.main(["--check", str(page)]) == 1
    assert layout.main(["--write", str(page)]) == 0
    assert layout.main(["--check", str(page)]) == 0
    text = page.read_text()
    assert "| `jobs/naming.py` |" in text
    assert text.endswith(f"{layout.END_MARK}\n\nafter\n")
    page.write_text("# no marks\n")
    assert layout.main(["--check", str(page)]) == 1
