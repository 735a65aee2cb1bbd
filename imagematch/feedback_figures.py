"""The feedback agreement figures ``/metrics`` exports, read through one function.

Agents' labels (issue 23: ``POST /v1/jobs/{id}/feedback``) say whether an answer was right; their
store (``Ledger.list_labels``) and their statistics (``imagematch.feedback_stats.agreement``) come
from the learning work. :func:`read_feedback_figures` is the one place that reads them: over the
current labels of the last :data:`WINDOW`, by verdict, and the top-1/top-5 agreement. Until both
exist in the code base it reads zeros (so ``/metrics`` and the alert rules never change shape).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["WINDOW", "FeedbackFigures", "read_feedback_figures"]

WINDOW = timedelta(days=7)
_PAGE = 1000


@dataclass(frozen=True)
class FeedbackFigures:
    """Current labels by verdict (confirmed, corrected, not_in_catalog, unusable), and the share of
    labels naming a product whose product was our top-1 (top-5) answer, in [0, 1]."""

    labels_by_verdict: Mapping[str, int] = field(default_factory=dict)
    top1_agreement: float = 0.0
    top5_agreement: float = 0.0


def read_feedback_figures(ledger: Any, now: datetime) -> FeedbackFigures:
    """The figures over the labels of the last :data:`WINDOW`; zeros without a label store."""
    list_labels = getattr(ledger, "list_labels", None)
    try:  # the learning work's figures, one definition for /v1/stats and /metrics
        agreement = importlib.import_module("imagematch.feedback_stats").agreement
    except (ImportError, AttributeError):
        return FeedbackFigures()
    if list_labels is None:
        return FeedbackFigures()
    labels: list[Any] = []
    after: int | None = None
    while page := list_labels(since=now - WINDOW, after_id=after, limit=_PAGE):
        labels += page
        after = page[-1].id
    figures = agreement(labels)
    return FeedbackFigures(
        labels_by_verdict=dict(Counter(str(getattr(lb.verdict, "value", lb.verdict)) for lb in labels)),
        top1_agreement=float(figures.get("top1_agreement") or 0.0),
        top5_agreement=float(figures.get("top5_agreement") or 0.0),
    )
