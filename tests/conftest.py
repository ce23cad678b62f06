"""Shared test plumbing: the outcome of each test phase is kept on the item so that
fixtures can print component logs when, and only when, a test failed."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
"""Real recorded GitHub and GitLab deliveries, copied into the repository so that a clone
alone passes (tests/fixtures/webhooks/README.md says where each comes from); tests never
edit them, they rewrite copies."""


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test that requested a fixture failed (call it at teardown)."""
    report = getattr(request.node, "report_call", None)
    return report is None or report.failed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
