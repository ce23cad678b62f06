"""The page's pure functions (``webhook/static/index.html``, each between its
``// BEGIN <name>`` and ``// END <name>`` markers) called under Node, for the page's tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib.resources import files
from typing import Any

NODE = shutil.which("node") or "/usr/bin/node"


def call_page_function(name: str, *args: Any) -> Any:
    """``name(*args)`` as the page's script computes it: the arguments and the result go
    through JSON. Raises ``subprocess.CalledProcessError`` when the script fails."""
    page = files("webhook").joinpath("static/index.html").read_text(encoding="utf-8")
    begin = page.index(f"// BEGIN {name}")
    source = page[begin : page.index(f"// END {name}")]
    call = f"{name}({', '.join(json.dumps(arg) for arg in args)})"
    script = f"{source}\nprocess.stdout.write(JSON.stringify({call}));"
    out = subprocess.run(
        [NODE, "-e", script], check=True, capture_output=True, text=True, timeout=30
    )
    return json.loads(out.stdout)
