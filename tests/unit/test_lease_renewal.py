"""One renewer thread per worker keeps every batch's leases, and a stopped lease is never renewed."""

from __future__ import annotations

import threading
from typing import Any

from imagematch.job_kinds import JobKinds, JobKindSpec, MatchImagePayload
from imagematch.lease_renewal import LeaseRenewer
from imagematch.ledger.memory import MemoryLedger
from imagematch.models import Job, JobStatus, NewJob
from imagematch.retry import RetryPolicy
from imagematch.worker import LeaseKeeper, Worker


class CountingLedger(MemoryLedger):
    """Records which thread renewed which job, and signals each job's second renewal."""

    def __init__(self) -> None:
        super().__init__()
        self.renewals: list[tuple[int, int]] = []  # (job id, thread ident)
        self.renewed_twice: dict[int, threading.Event] = {}

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        self.renewals.append((job_id, threading.get_ident()))
        if sum(1 for renewed, _ in self.renewals if renewed == job_id) >= 2:
            self.renewed_twice.setdefault(job_id, threading.Event()).set()
        return super().heartbeat(job_id, worker_id, lease_seconds=lease_seconds)


def test_one_thread_renews_the_leases_of_every_batch_a_worker_runs() -> None:
    ledger = CountingLedger()
    for n in range(3):
        ledger.submit(NewJob(idempotency_key=f"k{n}", payload={"image": "blob:x"}))

    def slow(job: Job, payload: Any) -> None:  # runs until its lease was renewed twice
        assert ledger.renewed_twice.setdefault(job.id, threading.Event()).wait(10)

    spec = JobKindSpec(kind="match_image", payload=MatchImagePayload, handler=slow, needs_embedder=False)
    worker = Worker(ledger, JobKinds([spec]), RetryPolicy(), lease_seconds=0.06, batch_size=1)
    assert worker.drain() == 3
    assert {ledger.get_job(n).status for n in (1, 2, 3)} == {JobStatus.COMPLETE}  # type: ignore[union-attr]
    assert {job_id for job_id, _ in ledger.renewals} == {1, 2, 3}
    assert len({thread for _, thread in ledger.renewals}) <= 2  # one, or its successor after a pause


def test_a_stopped_lease_is_never_renewed_again() -> None:
    ledger = CountingLedger()
    job, _ = ledger.submit(NewJob(idempotency_key="k", payload={"image": "blob:x"}))
    [claimed] = ledger.claim("w", limit=1, lease_seconds=0.06)
    renewer = LeaseRenewer()
    keeper = LeaseKeeper(ledger, [claimed.id], "w", lease_seconds=0.06, renewer=renewer)
    keeper.start()
    assert ledger.renewed_twice.setdefault(job.id, threading.Event()).wait(10)
    keeper.stop()
    renewed = len(ledger.renewals)
    other, _ = ledger.submit(NewJob(idempotency_key="k2", payload={"image": "blob:x"}))
    [held] = ledger.claim("w", limit=1, lease_seconds=0.06)
    second = LeaseKeeper(ledger, [held.id], "w", lease_seconds=0.06, renewer=renewer)
    second.start()  # the renewer keeps running for this one; the stopped one stays stopped
    assert ledger.renewed_twice.setdefault(other.id, threading.Event()).wait(10)
    second.stop()
    assert {job_id for job_id, _ in ledger.renewals[renewed:]} == {other.id}
