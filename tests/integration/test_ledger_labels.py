"""The labels part of the ledger contract: each test runs against each backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagematch.labels import NewLabel, Verdict
from imagematch.ledger import Ledger
from imagematch.models import NewJob
from tests.conftest import FakeClock
from tests.integration import test_ledger_contract

make_ledger = test_ledger_contract.make_ledger  # the contract suite's fixture: one run per backend


def _labelled_job(ledger: Ledger, n: int = 1) -> int:
    job, _ = ledger.submit(NewJob(source="api", idempotency_key=f"k-{n}", payload={"image": f"blob:{n}"}))
    return job.id


def _label(
    job_id: int, verdict: Verdict = Verdict.CONFIRMED, product: str | None = "P1", **extra: object
) -> NewLabel:
    return NewLabel.model_validate(
        {"job_id": job_id, "verdict": verdict, "product_id": product, "given_by": "alice", **extra}
    )


def test_a_label_is_stored_once_and_repeating_it_is_idempotent(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job_id = _labelled_job(ledger)
    assert ledger.current_label(job_id) is None
    extra = {
        "agent_name": "Ann",
        "agent_email": "ann@example.com",
        "source": "api",
        "image_sha256": "ab" * 32,
        "predicted_rank": 2,
        "top_score": 0.8,
        "category": "snacks",
        "comment": "the blue one",
    }
    label, created = ledger.put_label(_label(job_id, **extra))
    assert created and label.id and label.current and label.created_at == clock.now
    assert (label.verdict, label.product_id, label.given_by) == (Verdict.CONFIRMED, "P1", "alice")
    assert (label.agent_name, label.predicted_rank, label.top_score, label.category) == (
        "Ann",
        2,
        0.8,
        "snacks",
    )
    clock.advance(5)
    again, created_again = ledger.put_label(_label(job_id, given_by="bob", **extra))
    assert not created_again and again == label
    assert ledger.current_label(job_id) == label


def test_a_later_label_replaces_the_earlier_and_history_is_kept(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job_id = _labelled_job(ledger)
    first, _ = ledger.put_label(_label(job_id))
    clock.advance(10)
    second, created = ledger.put_label(_label(job_id, Verdict.CORRECTED, "P2", given_by="bob"))
    assert created and second.id != first.id
    assert ledger.current_label(job_id) == second
    history = ledger.list_labels(job_id=job_id, current_only=False)
    assert [h.id for h in history] == [first.id, second.id]
    assert history[0].ended_at == clock.now and history[0].ended_by == "bob" and not history[0].current
    assert ledger.list_labels(job_id=job_id) == [second]


def test_retracting_ends_the_current_label(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job_id = _labelled_job(ledger)
    assert ledger.retract_label(job_id, by="alice") is None
    label, _ = ledger.put_label(_label(job_id, Verdict.NOT_IN_CATALOG, None))
    clock.advance(3)
    ended = ledger.retract_label(job_id, by="carol")
    assert ended and ended.id == label.id and ended.ended_by == "carol" and ended.ended_at == clock.now
    assert ledger.current_label(job_id) is None
    assert ledger.retract_label(job_id, by="carol") is None
    relabel, created = ledger.put_label(_label(job_id, Verdict.NOT_IN_CATALOG, None))
    assert created and relabel.id != label.id


def test_labels_are_listed_by_filter_and_page(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    jobs = [_labelled_job(ledger, n) for n in range(4)]
    ledger.put_label(_label(jobs[0], image_sha256="aa" * 32))
    clock.advance(60)
    ledger.put_label(_label(jobs[1], Verdict.UNUSABLE, None))
    ledger.put_label(_label(jobs[2], Verdict.CORRECTED, "P2"))
    ledger.put_label(_label(jobs[3], Verdict.CORRECTED, "P2"))
    ledger.retract_label(jobs[3], by="x")
    assert [lb.job_id for lb in ledger.list_labels()] == jobs[:3]
    assert [lb.job_id for lb in ledger.list_labels(since=clock.now)] == jobs[1:3]
    assert [lb.job_id for lb in ledger.list_labels(verdict=Verdict.CORRECTED)] == [jobs[2]]
    assert [lb.job_id for lb in ledger.list_labels(product_id="P2", current_only=False)] == jobs[2:]
    assert [lb.job_id for lb in ledger.list_labels(image_sha256="aa" * 32)] == [jobs[0]]
    page = ledger.list_labels(limit=2)
    assert [lb.job_id for lb in page] == jobs[:2]
    assert [lb.job_id for lb in ledger.list_labels(after_id=page[-1].id)] == [jobs[2]]


def test_a_label_needs_a_product_exactly_when_it_names_one() -> None:
    with pytest.raises(ValueError, match="product_id is required"):
        NewLabel(job_id=1, verdict=Verdict.CORRECTED)
    with pytest.raises(ValueError, match="names no product"):
        NewLabel(job_id=1, verdict=Verdict.UNUSABLE, product_id="P1")
