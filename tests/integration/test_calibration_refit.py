"""The confidence fit follows the operators' labels once there are enough of them."""

from __future__ import annotations

import numpy as np

from imagematch.calibration import REFIT_MIN_LABELS, Calibration
from imagematch.calibration_labels import CalibrationRefit, labelled_rankings
from imagematch.labels import NewLabel, Verdict
from imagematch.ledger import Ledger, open_ledger
from imagematch.models import Match, NewJob, NewPrediction
from tests.conftest import FakeClock

MODEL = "model-a"


def _answer(ledger: Ledger, n: int, top: float, second: float, *, embedder_id: str = MODEL) -> int:
    job, _ = ledger.submit(NewJob(source="test", idempotency_key=f"k{n}", payload={"image": f"blob:{n}"}))
    ledger.claim_job(job.id, "w", lease_seconds=30)
    matches = [Match(product_id="A", name="a", score=top, image_id="A/1"),
               Match(product_id="B", name="b", score=second, image_id="B/1")]  # fmt: skip
    ledger.complete(
        job.id, "w", NewPrediction(matches=matches, embedder_id=embedder_id, index_version="v1", latency_ms=1)
    )
    return job.id


def _label(ledger: Ledger, job_id: int, verdict: Verdict, product: str | None) -> None:
    ledger.put_label(NewLabel(job_id=job_id, verdict=verdict, product_id=product, given_by="agent"))


def test_rows_count_right_wrong_and_leave_out_unusable_and_other_models() -> None:
    ledger = open_ledger("memory://")
    _label(ledger, _answer(ledger, 1, 0.6, 0.4), Verdict.CONFIRMED, "A")
    _label(ledger, _answer(ledger, 2, 0.5, 0.45), Verdict.CORRECTED, "B")
    _label(ledger, _answer(ledger, 3, 0.5, 0.45), Verdict.NOT_IN_CATALOG, None)
    _label(ledger, _answer(ledger, 4, 0.5, 0.45), Verdict.UNUSABLE, None)
    _label(ledger, _answer(ledger, 5, 0.5, 0.45, embedder_id="model-b"), Verdict.CONFIRMED, "A")
    rows = labelled_rankings(ledger, MODEL)
    assert [(round(r.margin, 2), r.correct) for r in rows] == [(0.2, True), (0.05, False), (0.05, False)]


def test_the_operator_fit_replaces_the_shipped_one_at_enough_labels() -> None:
    ledger, clock = open_ledger("memory://"), FakeClock()
    used: list[Calibration | None] = []
    refit = CalibrationRefit(ledger, MODEL, used.append, clock=clock)
    assert refit.refit() is None and used == [None]  # this model ships no fit
    rng = np.random.default_rng(0)
    for n in range(REFIT_MIN_LABELS):
        top = float(rng.uniform(0.2, 0.8))
        job = _answer(ledger, n, top, top - float(rng.uniform(0, 0.2)))
        _label(
            ledger,
            job,
            Verdict.CONFIRMED if rng.uniform() < top else Verdict.CORRECTED,
            "A" if n % 7 else "B",
        )
        refit.label_changed()
    fit = used[-1]
    assert fit is not None and fit.fitted_on == "operator labels" and fit.labels == REFIT_MIN_LABELS
    assert fit.confidence(0.8, 0.6) > fit.confidence(0.3, 0.25)
