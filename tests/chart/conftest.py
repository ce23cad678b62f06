"""The pinned helm, for every chart test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def helm() -> str:
    """The pinned helm (fetched into the cache by helm-path.sh; needs no cluster)."""
    out = subprocess.run(
        [str(ROOT / "tests" / "cluster" / "helm-path.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    return out.strip().splitlines()[-1]
