"""The feedback agreement figures ``/metrics`` exports, read through one function.

Agents' labels (issue 23: ``POST /v1/jobs/{id}/feedback``) say whether an answer was right. Their
ledger store and its statistics come from the learning work; until a ledger offers them, every
figure reads as zero. **Where to plug in:** :func:`read_feedback_figures` — when the ledger has a
label statistics method, map its answer onto :class:`FeedbackFigures` there; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeedbackFigures", "read_feedback_figures"]


@dataclass(frozen=True)
class FeedbackFigures:
    """Current labels by verdict (confirmed, corrected, not_in_catalog, unusable), and the share of
    labelled photos whose top-1 (top-5) answer held the right product, in [0, 1]."""

    labels_by_verdict: Mapping[str, int] = field(default_factory=dict)
    top1_agreement: float = 0.0
    top5_agreement: float = 0.0


def read_feedback_figures(ledger: Any) -> FeedbackFigures:
    """The ledger's label statistics as :class:`FeedbackFigures`; zeros when it keeps none yet.

    Accepts a ``label_stats()`` answer shaped as a mapping (or an object with the same
    attributes) with ``by_verdict``, ``top1_agreement`` and ``top5_agreement``."""
    stats_of = getattr(ledger, "label_stats", None)
    if stats_of is None:
        return FeedbackFigures()
    stats = stats_of()

    def read(name: str, default: Any) -> Any:
        if isinstance(stats, Mapping):
            return stats.get(name, default)
        return getattr(stats, name, default)

    return FeedbackFigures(
        labels_by_verdict={str(k): int(v) for k, v in dict(read("by_verdict", {})).items()},
        top1_agreement=float(read("top1_agreement", 0.0) or 0.0),
        top5_agreement=float(read("top5_agreement", 0.0) or 0.0),
    )
