"""Calibrated confidence: the probability that an answer's top-1 product is right.

A fit maps two numbers of a ranking, the top score and the top-1 − top-2 margin, to a probability
with a logistic model ``p = σ(a·score + b·margin + c)``. Logistic rather than isotonic because:

- it uses both numbers at once (isotonic regression is one-dimensional: it would need the two
  folded into one score first, by hand);
- it has three parameters, so a few hundred labelled photos fit it without the step-shaped
  overfitting isotonic shows at that size, and it is monotone and smooth by construction;
- it extrapolates sanely to scores outside the fitted range (a new catalog, a later model).

A fit belongs to one embedder (scores are on a different scale per model): the default model
ships one made on the dev set's ``train`` split (``calibration_fits.json`` in this package); once
enough operator labels exist (``REFIT_MIN_LABELS``), :func:`fit_calibration` refits from them.

Bands turn the probability into what an agent reads: ``confident`` at or above
``Calibration.confident_at`` (so that a confident answer is right ≥ 95 % of the time),
``no_match`` below ``Calibration.no_match_below`` (0.5: the top-1 is more likely wrong than
right; ``no_confident_match`` follows it), ``check`` in between. A fit made on the photos it will
be applied to (operator labels) uses 0.95 for ``confident_at``. The shipped fit cannot: its train
photos were shot beside the catalog's own and score higher than customers' new shoots, so on the
dev set's ``val`` split it is overconfident (ECE 0.085), and it ships ``confident_at`` 0.99, the
level at which its confident answers are right ≥ 95 % on val (BENCHMARKS.md, the 2026-12-07 study).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources

import numpy as np
from pydantic import BaseModel, Field

__all__ = [
    "REFIT_MIN_LABELS",
    "Band",
    "Calibration",
    "LabelledRanking",
    "band_without_fit",
    "calibration_report",
    "expected_calibration_error",
    "fit_calibration",
    "shipped_calibration",
]

REFIT_MIN_LABELS = 200  # operator labels needed before they replace the shipped fit
CONFIDENT_PROBABILITY = 0.95  # a "confident" answer should be right this often
NO_MATCH_PROBABILITY = 0.5  # below this the top-1 is more likely wrong than right
SHIPPED_FITS = "calibration_fits.json"


class Band(StrEnum):
    """What an agent reads: act on it, check it, or treat it as no answer."""

    CONFIDENT = "confident"
    CHECK = "check"
    NO_MATCH = "no_match"


class LabelledRanking(BaseModel):
    """One labelled answer, as a fit sees it: its top score, its margin and whether top-1 was right."""

    top_score: float
    margin: float
    correct: bool


class Calibration(BaseModel):
    """A fitted map from (top score, margin) to the probability that top-1 is right."""

    embedder_id: str
    score_weight: float
    margin_weight: float
    intercept: float
    confident_at: float = CONFIDENT_PROBABILITY
    no_match_below: float = NO_MATCH_PROBABILITY
    fitted_on: str = Field(description="What the fit was made from, e.g. 'dev-set train split'.")
    labels: int = Field(description="How many labelled photos the fit saw.")
    fitted_at: datetime | None = None

    def confidence(self, top_score: float, second_score: float | None) -> float:
        """The probability in [0, 1] that the top-1 is right. Without a second product the
        margin is the top score itself (nothing competes)."""
        margin = top_score - (second_score if second_score is not None else 0.0)
        z = self.score_weight * top_score + self.margin_weight * margin + self.intercept
        return _sigmoid(z)

    def band(self, confidence: float) -> Band:
        if confidence >= self.confident_at:
            return Band.CONFIDENT
        return Band.NO_MATCH if confidence < self.no_match_below else Band.CHECK

    def assess(self, scores: Sequence[float]) -> tuple[float | None, Band]:
        """Confidence and band of a ranking given its scores, best first (no scores: no match)."""
        if not scores:
            return None, Band.NO_MATCH
        confidence = self.confidence(scores[0], scores[1] if len(scores) > 1 else None)
        return round(confidence, 4), self.band(confidence)

    def describe(self) -> dict[str, object]:
        """What `/v1/stats` reports about the fit in use."""
        return {
            "embedder_id": self.embedder_id,
            "fitted_on": self.fitted_on,
            "labels": self.labels,
            "fitted_at": self.fitted_at.isoformat() if self.fitted_at else None,
            "confident_at": self.confident_at,
            "no_match_below": self.no_match_below,
        }


def band_without_fit(scores: Sequence[float], min_score: float) -> Band:
    """The band when no fit exists for the model: the raw threshold decides no match, and
    nothing is called confident (there is no probability to back it)."""
    return Band.NO_MATCH if not scores or scores[0] < min_score else Band.CHECK


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def fit_calibration(
    rows: Iterable[LabelledRanking],
    *,
    embedder_id: str,
    fitted_on: str,
    l2: float = 1e-5,
    now: datetime | None = None,
) -> Calibration:
    """Fit the logistic map by Newton's method (a light L2 penalty keeps it finite when the rows
    are separable). Raises ValueError without both right and wrong answers among the rows."""
    data = list(rows)
    y = np.array([r.correct for r in data], dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("a fit needs both right and wrong answers")
    x = np.array([[r.top_score, r.margin, 1.0] for r in data], dtype=np.float64)
    w = np.zeros(3)
    penalty = np.diag([l2, l2, 0.0]) * len(data)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(3)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Calibration(
        embedder_id=embedder_id,
        score_weight=float(w[0]),
        margin_weight=float(w[1]),
        intercept=float(w[2]),
        fitted_on=fitted_on,
        labels=len(data),
        fitted_at=now or datetime.now(UTC),
    )


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE: over equal-width confidence bins, the share-weighted gap |accuracy − mean confidence|."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(correct, dtype=np.float64)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(right[members].mean() - conf[members].mean())
    return float(total)


def calibration_report(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    confident_at: float = CONFIDENT_PROBABILITY,
    no_match_below: float = NO_MATCH_PROBABILITY,
    bins: int = 10,
) -> dict[str, object]:
    """ECE, the reliability diagram's bins (n, mean confidence, accuracy per equal-width bin) and
    each band's share and precision at the given band limits, for one set of labelled answers."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    rows = [
        {
            "n": int(m.sum()),
            "confidence": round(float(conf[m].mean()), 4),
            "accuracy": round(float(right[m].mean()), 4),
        }
        for m in (which == b for b in range(bins))
        if m.any()
    ]
    bands = {
        "confident": conf >= confident_at,
        "check": (conf < confident_at) & (conf >= no_match_below),
        "no_match": conf < no_match_below,
    }
    return {
        "ece": round(expected_calibration_error(list(conf), list(right), bins), 4),
        "bins": rows,
        "bands": {
            name: {
                "share": round(float(m.mean()), 4),
                "precision": round(float(right[m].mean()), 4) if m.any() else None,
            }
            for name, m in bands.items()
        },
    }


def shipped_calibration(embedder_id: str) -> Calibration | None:
    """The fit this package ships for ``embedder_id``, or ``None`` when it ships none."""
    text = resources.files("imagematch").joinpath(SHIPPED_FITS).read_text(encoding="utf-8")
    fits = [Calibration.model_validate(item) for item in json.loads(text)]
    return next((fit for fit in fits if fit.embedder_id == embedder_id), None)
