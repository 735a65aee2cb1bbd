"""``make test`` leaves the tree clean (issue #26 item 11): the reliability suite writes the tracked
RELIABILITY.md only when asked (``make reliability`` sets IMAGEMATCH_WRITE_RELIABILITY=1)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.reliability import conftest


def _finish(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    report = tmp_path / "RELIABILITY.md"
    monkeypatch.setattr(conftest, "REPORT", report)
    monkeypatch.setattr(conftest, "_OUTCOMES", conftest.Outcomes([("security", "a case", "an outcome")]))
    session: Any = SimpleNamespace()
    conftest.pytest_sessionfinish(session, 0)
    return report


def test_a_plain_test_run_does_not_rewrite_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcomes: conftest.Outcomes
) -> None:
    monkeypatch.delenv(conftest.WRITE_REPORT_ENV, raising=False)
    assert not _finish(monkeypatch, tmp_path).exists()
    outcomes.record("faults", "`make test` run", "RELIABILITY.md untouched (written by `make reliability`)")


def test_make_reliability_writes_the_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(conftest.WRITE_REPORT_ENV, "1")
    assert "| a case | an outcome |" in _finish(monkeypatch, tmp_path).read_text()
