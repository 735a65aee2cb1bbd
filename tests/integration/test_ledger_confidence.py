"""The ledger contract for a prediction's calibrated confidence and band, on every backend."""

from __future__ import annotations

from collections.abc import Callable

from imagematch.calibration import Band
from imagematch.ledger import Ledger
from imagematch.models import Match, NewJob, NewPrediction
from tests.integration.test_ledger_contract import make_ledger  # noqa: F401 (the parametrized fixture)


def _finished(ledger: Ledger, n: int, prediction: NewPrediction) -> int:
    job, _ = ledger.submit(NewJob(source="test", idempotency_key=f"conf-{n}", payload={"image": "blob:x"}))
    assert ledger.claim_job(job.id, "w1", lease_seconds=30) is not None
    assert ledger.complete(job.id, "w1", prediction)
    return job.id


def test_confidence_and_band_are_stored_and_old_answers_have_none(
    make_ledger: Callable[..., Ledger],  # noqa: F811 (the imported fixture)
) -> None:
    ledger = make_ledger()
    match = Match(product_id="P1", name="One", score=0.61, image_id="P1/abc")
    base = NewPrediction(matches=[match], embedder_id="e", index_version="v000001", latency_ms=3.0)
    sure = _finished(ledger, 1, base.model_copy(update={"confidence": 0.97, "band": Band.CONFIDENT}))
    old = _finished(ledger, 2, base)
    stored = ledger.get_prediction(sure)
    assert stored is not None and stored.confidence == 0.97 and stored.band is Band.CONFIDENT
    assert stored.best_score == 0.61  # the raw score stays
    before = ledger.get_prediction(old)
    assert before is not None and before.confidence is None and before.band is None
