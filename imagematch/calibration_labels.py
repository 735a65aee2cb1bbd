"""Refit the confidence calibration from operator labels (issue 24): once ``REFIT_MIN_LABELS``
labelled answers of the served model exist, they replace the fit the package ships.

A label becomes one row of the fit: the answer's top score and top-1 − top-2 margin (from the
stored prediction) and whether its top-1 was right — ``confirmed``/``corrected`` to the product we
ranked first is right, to any other product wrong, ``not_in_catalog`` wrong (whatever we said, it
was not the product); ``unusable`` photos say nothing about the ranking and are left out. Only the
newest ``MAX_ROWS`` count, so the fit follows the catalog and the learned references as they grow.

:class:`CalibrationRefit` keeps a matcher's fit current in its process: on start and after every
``REFIT_EVERY`` label changes (a listener on :class:`~imagematch.feedback.Feedback`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from imagematch.calibration import (
    REFIT_MIN_LABELS,
    Calibration,
    LabelledRanking,
    fit_calibration,
    shipped_calibration,
)
from imagematch.labels import ENROLLING_VERDICTS, Label, Verdict
from imagematch.ledger import Ledger
from imagematch.models import Prediction

__all__ = ["MAX_ROWS", "REFIT_EVERY", "CalibrationRefit", "labelled_rankings", "operator_calibration"]

MAX_ROWS = 5_000  # the newest labels a refit reads (one prediction read each)
REFIT_EVERY = 25  # label changes between refits in a running process
FITTED_ON = "operator labels"


def labelled_ranking(label: Label, prediction: Prediction | None, embedder_id: str) -> LabelledRanking | None:
    """The fit's row for one current label, or ``None`` when it cannot count (unusable photo, no
    answer, an answer by another model)."""
    if prediction is None or not prediction.matches or prediction.embedder_id != embedder_id:
        return None
    if label.verdict is Verdict.UNUSABLE:
        return None
    top = prediction.matches[0]
    second = prediction.matches[1].score if len(prediction.matches) > 1 else 0.0
    right = label.verdict in ENROLLING_VERDICTS and label.product_id == top.product_id
    return LabelledRanking(top_score=top.score, margin=top.score - second, correct=right)


def labelled_rankings(ledger: Ledger, embedder_id: str, *, limit: int = MAX_ROWS) -> list[LabelledRanking]:
    """The rows of the newest ``limit`` current labels of answers by ``embedder_id``."""
    labels: list[Label] = []
    after: int | None = None
    while page := ledger.list_labels(after_id=after, limit=1000):
        labels = (labels + page)[-limit:]
        after = page[-1].id
    rows = (labelled_ranking(label, ledger.get_prediction(label.job_id), embedder_id) for label in labels)
    return [row for row in rows if row is not None]


def operator_calibration(
    rows: Iterable[LabelledRanking], embedder_id: str, *, now: datetime | None = None
) -> Calibration | None:
    """A fit from operator rows once there are ``REFIT_MIN_LABELS`` of them with both right and
    wrong answers; ``None`` before."""
    data = list(rows)
    if len(data) < REFIT_MIN_LABELS or len({row.correct for row in data}) < 2:
        return None
    return fit_calibration(data, embedder_id=embedder_id, fitted_on=FITTED_ON, now=now)


class CalibrationRefit:
    """Chooses the fit a matcher uses: the operators' once they gave enough labels, else the
    shipped one (``None`` for a model that ships none)."""

    def __init__(
        self,
        ledger: Ledger,
        embedder_id: str,
        apply: Callable[[Calibration | None], None],
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._embedder_id = embedder_id
        self._apply = apply
        self._clock = clock
        self._changes = 0
        self._lock = threading.Lock()

    def refit(self) -> Calibration | None:
        """Read the labels, choose the fit, hand it to the matcher; returns it."""
        rows = labelled_rankings(self._ledger, self._embedder_id)
        fit = operator_calibration(rows, self._embedder_id, now=self._clock())
        chosen = fit or shipped_calibration(self._embedder_id)
        self._apply(chosen)
        return chosen

    def label_changed(self, *_: Any) -> None:
        """A :class:`~imagematch.feedback.Feedback` listener: refit every ``REFIT_EVERY`` changes."""
        with self._lock:
            self._changes += 1
            due = self._changes % REFIT_EVERY == 0
        if due:
            self.refit()
