"""The ledger contract (every backend) for what observability stores: the request id of each job
and the outcome counters ``/metrics`` reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from imagematch.ledger import Ledger
from imagematch.log_context import bound
from imagematch.models import ErrorKind, JobStatus, NewJob
from tests.conftest import FakeClock
from tests.integration.test_ledger_contract import _job, _prediction, make_ledger

__all__ = ["make_ledger"]  # the parametrized fixture, shared with the main contract suite


def test_a_job_keeps_the_request_id_it_was_submitted_under(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    with bound(request_id="req-abc.1"):
        job, created = ledger.submit(_job(1))
    assert created and job.request_id == "req-abc.1"
    assert ledger.get_job(job.id).request_id == "req-abc.1"  # type: ignore[union-attr]
    # Submitted again under another request: the job is the first one, with its request id.
    with bound(request_id="req-other"):
        again, created = ledger.submit(_job(1))
    assert not created and again.request_id == "req-abc.1"
    explicit, _ = ledger.submit(NewJob(idempotency_key="k2", request_id="given"))
    plain, _ = ledger.submit(_job(3))
    assert explicit.request_id == "given" and plain.request_id is None


def test_job_figures_count_every_ended_attempt(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    assert ledger.job_figures().outcomes == [] and ledger.job_figures().oldest_pending_since is None
    jobs = [ledger.submit(_job(n, source="zendesk" if n % 2 else "api"))[0] for n in range(5)]
    pending_since = clock.now
    clock.advance(5)
    claimed = ledger.claim("w", limit=4, lease_seconds=60)
    assert len(claimed) == 4
    a, b, c, d = (job.id for job in claimed)
    ledger.complete(a, "w", _prediction())
    ledger.fail(
        b, "w", error_kind=ErrorKind.TRANSIENT, error="503", retry_at=clock.now + timedelta(seconds=9)
    )
    ledger.fail(c, "w", error_kind=ErrorKind.PERMANENT, error="not an image", retry_at=None)
    ledger.skip(d, "w", reason="gone")
    figures = ledger.job_figures()
    counts = {(o.source, o.outcome, o.error_kind): o.count for o in figures.outcomes}
    by_id = {job.id: job.source for job in jobs}
    assert sum(counts.values()) == 4
    assert counts[(by_id[a], JobStatus.COMPLETE, None)] >= 1
    assert (by_id[b], JobStatus.FAILED, ErrorKind.TRANSIENT) in counts
    assert (by_id[c], JobStatus.FAILED, ErrorKind.PERMANENT) in counts
    assert (by_id[d], JobStatus.SKIPPED, None) in counts
    assert {o.kind for o in figures.outcomes} == {"match_image"}
    assert figures.oldest_pending_since == pending_since  # the fifth job, still waiting
    ledger.requeue(a)  # run again: the counters only grow
    ledger.claim_job(a, "w", lease_seconds=60)
    ledger.complete(a, "w", _prediction())
    again = {(o.source, o.outcome, o.error_kind): o.count for o in ledger.job_figures().outcomes}
    assert again[(by_id[a], JobStatus.COMPLETE, None)] == counts[(by_id[a], JobStatus.COMPLETE, None)] + 1


def test_process_metrics_are_summed_and_retired_without_changing_the_sums(
    make_ledger: Callable[..., Ledger],
) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    assert ledger.process_metrics_total() == {}
    ledger.put_process_metrics("web:1", {"a": 1.0, "b": 2.5})
    ledger.put_process_metrics("gpu:1", {"a": 4.0})
    ledger.put_process_metrics("gpu:1", {"a": 5.0, "c": 1.0})  # replaces its last samples
    assert ledger.process_metrics_total() == {"a": 6.0, "b": 2.5, "c": 1.0}
    assert ledger.retire_process_metrics(before=clock.now) == 0  # nobody is silent yet
    clock.advance(3600)
    ledger.put_process_metrics("web:1", {"a": 2.0, "b": 3.0})
    assert ledger.retire_process_metrics(before=clock.now - timedelta(seconds=60)) == 1  # gpu:1 folded
    assert ledger.process_metrics_total() == {"a": 7.0, "b": 3.0, "c": 1.0}
    clock.advance(3600)
    ledger.put_process_metrics("gpu:2", {"c": 1.0})
    assert ledger.retire_process_metrics(before=clock.now - timedelta(seconds=60)) == 1  # web:1 folded too
    assert ledger.process_metrics_total() == {"a": 7.0, "b": 3.0, "c": 2.0}
