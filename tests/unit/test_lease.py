"""The lease renewer survives a failed heartbeat, and a lost lease records nothing."""

from __future__ import annotations

import threading
from typing import Any

from imagematch.errors import TransientError
from imagematch.job_kinds import JobKinds, JobKindSpec, MatchImagePayload
from imagematch.ledger.memory import MemoryLedger
from imagematch.models import Job, JobStatus, NewJob
from imagematch.retry import RetryPolicy
from imagematch.worker import Worker


class FlakyLedger(MemoryLedger):
    """A memory ledger whose heartbeats fail or report the lease gone, as scripted."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__()
        self.answers = answers  # per call: an exception to raise, or the bool to return
        self.heartbeats = 0
        self.renewed_after_failure = threading.Event()

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        self.heartbeats += 1
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        if self.heartbeats >= 3:
            self.renewed_after_failure.set()
        return bool(answer) and super().heartbeat(job_id, worker_id, lease_seconds=lease_seconds)


def run_one(ledger: FlakyLedger, handler: Any) -> JobStatus:
    job, _ = ledger.submit(NewJob(idempotency_key="k", payload={"image": "blob:x"}))
    spec = JobKindSpec(kind=job.kind, payload=MatchImagePayload, handler=handler, needs_embedder=False)
    worker = Worker(ledger, JobKinds([spec]), RetryPolicy(), lease_seconds=0.3)
    [claimed] = ledger.claim(worker.worker_id, limit=1, lease_seconds=0.3)
    return worker.process(claimed)


def test_renewal_continues_after_a_transient_heartbeat_failure() -> None:
    ledger = FlakyLedger([TransientError("ledger busy"), TransientError("ledger busy")])

    def slow_handler(job: Job, payload: object) -> None:
        assert ledger.renewed_after_failure.wait(10), "the lease stopped being renewed"

    assert run_one(ledger, slow_handler) == JobStatus.COMPLETE
    assert ledger.heartbeats >= 3
    assert ledger.get_job(1) and ledger.get_job(1).status == JobStatus.COMPLETE  # type: ignore[union-attr]


def test_a_lost_lease_records_no_outcome() -> None:
    ledger = FlakyLedger([False])
    asked = threading.Event()
    original = ledger.heartbeat

    def heartbeat(job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        try:
            return original(job_id, worker_id, lease_seconds=lease_seconds)
        finally:
            asked.set()

    ledger.heartbeat = heartbeat  # type: ignore[method-assign]

    def handler(job: Job, payload: object) -> None:
        assert asked.wait(10)

    assert run_one(ledger, handler) == JobStatus.PROCESSING
    job = ledger.get_job(1)
    assert job is not None and job.status == JobStatus.PROCESSING  # left to whoever holds it now
    assert ledger.get_prediction(1) is None
