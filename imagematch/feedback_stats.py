"""Accuracy measured live: what the labels say about our answers (``/v1/stats`` ``feedback``, the
console's health page).

Each label carries where its product stood in our answer (``predicted_rank``), so the figures are
one scan of the current labels of the window:

* ``labelled`` — photos labelled;
* ``top1_agreement`` — of the labels that name a product (confirmed, corrected), the share whose
  product was our top-1; ``top5_agreement`` — … was in our answer's top-5;
* ``not_in_catalog_share`` — of all labels, the share saying the product is not in the catalog;

overall, per source and per category (the labelled product's), for the last 7 and 30 days, plus
weekly top-1 agreement (for a chart) and the number of learned references served.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from imagematch.labels import ENROLLING_VERDICTS, Label, Verdict
from imagematch.ledger import Ledger

__all__ = ["WINDOWS", "agreement", "feedback_stats", "weekly_agreement"]

WINDOWS = {"7d": 7, "30d": 30}
WEEKS = 12  # weekly points of the chart
NO_CATEGORY = "(none)"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def agreement(labels: Iterable[Label]) -> dict[str, Any]:
    """The figures of one group of labels (see the module docstring)."""
    rows = list(labels)
    named = [lb for lb in rows if lb.verdict in ENROLLING_VERDICTS]
    top1 = sum(1 for lb in named if lb.predicted_rank == 1)
    top5 = sum(1 for lb in named if lb.predicted_rank is not None and lb.predicted_rank <= 5)
    missing = sum(1 for lb in rows if lb.verdict == Verdict.NOT_IN_CATALOG)
    return {
        "labelled": len(rows),
        "named_product": len(named),
        "top1_agreement": _share(top1, len(named)),
        "top5_agreement": _share(top5, len(named)),
        "not_in_catalog_share": _share(missing, len(rows)),
    }


def _window(labels: list[Label]) -> dict[str, Any]:
    by_source: dict[str, list[Label]] = defaultdict(list)
    by_category: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_source[label.source or "unknown"].append(label)
        if label.verdict in ENROLLING_VERDICTS:
            by_category[label.category or NO_CATEGORY].append(label)
    return {
        **agreement(labels),
        "by_source": {name: agreement(rows) for name, rows in sorted(by_source.items())},
        "by_category": {name: agreement(rows) for name, rows in sorted(by_category.items())},
    }


def weekly_agreement(labels: list[Label], now: datetime, *, weeks: int = WEEKS) -> list[dict[str, Any]]:
    """Top-1 agreement per week, oldest first: ``[{"week_start", "labelled", "top1_agreement"}]``."""
    points = []
    for n in range(weeks, 0, -1):
        start, end = now - timedelta(weeks=n), now - timedelta(weeks=n - 1)
        rows = agreement(lb for lb in labels if start <= lb.created_at < end)
        points.append(
            {
                "week_start": start.isoformat(),
                "labelled": rows["labelled"],
                "top1_agreement": rows["top1_agreement"],
            }
        )
    return points


def _current_labels_since(ledger: Ledger, since: datetime) -> list[Label]:
    labels: list[Label] = []
    after: int | None = None
    while page := ledger.list_labels(since=since, after_id=after, limit=1000):
        labels += page
        after = page[-1].id
    return labels


def feedback_stats(ledger: Ledger, now: datetime, *, learned_references: int | None) -> dict[str, Any]:
    """``/v1/stats``' ``feedback``: per window (``7d``, ``30d``) the figures overall,
    ``by_source`` and ``by_category``; ``weekly`` top-1 agreement; ``learned_references`` served
    (``None`` without an index)."""
    longest = max(max(WINDOWS.values()), 7 * WEEKS)
    labels = _current_labels_since(ledger, now - timedelta(days=longest))
    windows = {
        name: _window([lb for lb in labels if lb.created_at >= now - timedelta(days=days)])
        for name, days in WINDOWS.items()
    }
    return {**windows, "weekly": weekly_agreement(labels, now), "learned_references": learned_references}
