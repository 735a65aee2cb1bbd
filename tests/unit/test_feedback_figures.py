"""The feedback gauges read agents' labels through one function: zeros without a label store, and
the learning work's figures (``imagematch.feedback_stats.agreement``) over the last week with one."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from imagematch.feedback_figures import WINDOW, FeedbackFigures, read_feedback_figures
from imagematch.ledger.memory import MemoryLedger

NOW = datetime(2026, 12, 7, tzinfo=UTC)


@dataclass
class _Label:
    id: int
    verdict: str
    predicted_rank: int | None


class _Labels:
    """A ledger with a label store, paged as the learning work's ``list_labels`` pages."""

    def __init__(self, labels: list[_Label]) -> None:
        self.labels = labels
        self.asked: list[datetime] = []

    def list_labels(self, *, since: datetime, after_id: int | None, limit: int) -> list[_Label]:
        self.asked.append(since)
        rest = [lb for lb in self.labels if after_id is None or lb.id > after_id]
        return rest[:limit]


def _agreement(labels: list[Any]) -> dict[str, Any]:
    named = [lb for lb in labels if lb.verdict in ("confirmed", "corrected")]
    top1 = sum(lb.predicted_rank == 1 for lb in named)
    return {"top1_agreement": top1 / len(named) if named else None, "top5_agreement": None}


def test_without_a_label_store_every_figure_is_zero() -> None:
    assert read_feedback_figures(MemoryLedger(), NOW) == FeedbackFigures()


def test_labels_are_read_through_the_learning_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("imagematch.feedback_stats")
    module.agreement = _agreement  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imagematch.feedback_stats", module)
    ledger = _Labels(
        [
            _Label(n, v, r)
            for n, (v, r) in enumerate(
                [("confirmed", 1), ("corrected", 3), ("confirmed", 1), ("not_in_catalog", None)] * 600,
                start=1,
            )
        ]
    )
    figures = read_feedback_figures(ledger, NOW)
    assert figures.labels_by_verdict == {"confirmed": 1200, "corrected": 600, "not_in_catalog": 600}
    assert figures.top1_agreement == pytest.approx(2 / 3) and figures.top5_agreement == 0.0
    assert set(ledger.asked) == {NOW - WINDOW} and len(ledger.asked) == 4  # 2400 labels, pages of 1000
