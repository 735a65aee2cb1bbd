"""Jobs in batches: one forward pass and one outcome round trip per batch, outcomes independent."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from PIL import Image

from imagematch.app import Services
from imagematch.embedder import Vectors
from imagematch.job_kinds import JobKinds, JobKindSpec, MatchImagePayload, image_ref_for_blob
from imagematch.ledger import JobOutcome, Ledger
from imagematch.ledger.memory import MemoryLedger
from imagematch.models import ErrorKind, Job, JobStatus, NewJob
from imagematch.retry import RetryPolicy
from imagematch.worker import Worker
from tests.conftest import PALETTE, image_bytes


class CountingLedger:
    """The services' ledger, counting how outcomes reach it."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.outcome_calls: list[int] = []  # per call: how many outcomes it carried

    def finish_many(self, worker_id: str, outcomes: list[JobOutcome]) -> list[bool]:
        self.outcome_calls.append(len(outcomes))
        return self._ledger.finish_many(worker_id, outcomes)

    def __getattr__(self, name: str) -> Any:
        if name in ("complete", "fail", "skip"):
            self.outcome_calls.append(1)
        return getattr(self._ledger, name)


class CountingEmbedder:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.embedder_id, self.dim = inner.embedder_id, inner.dim

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        self.batches.append(len(images))
        vectors: Vectors = self.inner.embed(images)
        return vectors


def _submit(services: Services, data: bytes, key: str) -> int:
    payload = {"image": image_ref_for_blob(services.blobs.put(data))}
    job, _ = services.ledger.submit(NewJob(idempotency_key=key, payload=payload))
    return job.id


def test_a_batch_is_embedded_once_and_recorded_once_and_a_bad_photo_fails_alone(
    services: Services,
) -> None:
    ledger = services.ledger = CountingLedger(services.ledger)  # type: ignore[assignment]
    embedder = services.matcher.embedder = CountingEmbedder(services.matcher.embedder)  # type: ignore[assignment]
    good = [_submit(services, image_bytes(PALETTE["green"], mark=n), f"g{n}") for n in range(3)]
    bad = _submit(services, b"%PDF-1.4 not an image", "bad")
    worker = services.make_worker()
    assert worker.batch_size == 4  # IMAGEMATCH_BATCH's default on CPU
    assert worker.run_once() == 4
    assert embedder.batches == [3] and ledger.outcome_calls == [4]
    for job_id in good:
        job, prediction = services.ledger.get_job(job_id), services.ledger.get_prediction(job_id)
        assert job and job.status == JobStatus.COMPLETE
        assert prediction and prediction.best_product_id == "P-green"
    failed = services.ledger.get_job(bad)
    assert failed and failed.status == JobStatus.FAILED and failed.error_kind == ErrorKind.PERMANENT


def test_dispatched_ids_run_in_batches_and_duplicates_are_harmless(services: Services) -> None:
    ledger = services.ledger = CountingLedger(services.ledger)  # type: ignore[assignment]
    ids = [_submit(services, image_bytes(PALETTE["red"], mark=n), f"r{n}") for n in range(6)]
    worker = services.make_worker()
    statuses = worker.process_job_ids([*ids, ids[0], 999_999])
    assert statuses == [JobStatus.COMPLETE] * 6 + [JobStatus.COMPLETE, None]
    assert ledger.outcome_calls == [4, 2]  # batches of 4: one round trip each
    assert worker.process_job_ids(ids) == [None] * 6  # a duplicate dispatch: nothing runs twice
    assert len(services.ledger.list_predictions()) == 6


def test_drain_runs_the_jobs_a_batch_creates(services: Services) -> None:
    _submit(services, image_bytes(PALETTE["blue"]), "b1")
    worker = services.make_worker()
    assert worker.drain() == 1
    _submit(services, image_bytes(PALETTE["blue"], mark=2), "b2")
    assert worker.drain() == 1
    assert services.ledger.count_by_status()[JobStatus.COMPLETE] == 2


def test_a_lost_lease_drops_only_that_jobs_outcome() -> None:
    asked = threading.Event()

    class OneLeaseLost(MemoryLedger):
        def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
            if job_id == 1:  # another worker took job 1 meanwhile
                asked.set()
                return False
            return super().heartbeat(job_id, worker_id, lease_seconds=lease_seconds)

    ledger = OneLeaseLost()
    for n in range(3):
        ledger.submit(NewJob(idempotency_key=f"k{n}", payload={"image": "blob:x"}))

    def handler(job: Job, payload: object) -> None:
        assert asked.wait(10)

    spec = JobKindSpec(kind="match_image", payload=MatchImagePayload, handler=handler, needs_embedder=False)
    worker = Worker(ledger, JobKinds([spec]), RetryPolicy(), lease_seconds=0.3, batch_size=3)
    assert worker.run_once() == 3
    statuses = [job.status for job in (ledger.get_job(n) for n in (1, 2, 3)) if job]
    assert statuses == [JobStatus.PROCESSING, JobStatus.COMPLETE, JobStatus.COMPLETE]
