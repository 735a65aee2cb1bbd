"""The worker records every outcome in the ledger: complete, skipped, failed (with retry)."""

from __future__ import annotations

from imagematch.app import Services
from imagematch.job_kinds import JobKindSpec, MatchImagePayload, image_ref_for_blob
from imagematch.models import ErrorKind, JobStatus, NewJob
from tests.conftest import PALETTE, image_bytes


def _submit(services: Services, data: bytes, key: str) -> int:
    digest = services.blobs.put(data)
    job, _ = services.ledger.submit(
        NewJob(idempotency_key=key, payload={"image": image_ref_for_blob(digest)})
    )
    return job.id


def test_jobs_complete_with_a_prediction(services: Services) -> None:
    job_id = _submit(services, image_bytes(PALETTE["green"], mark=1), "k1")
    assert services.make_worker().drain() == 1
    job = services.ledger.get_job(job_id)
    prediction = services.ledger.get_prediction(job_id)
    assert job and job.status == JobStatus.COMPLETE
    assert prediction and prediction.best_product_id == "P-green" and len(prediction.matches) == 4
    assert prediction.index_version == "v000001" and prediction.embedder_id == "tiny-rgb8x8@1"


def test_not_an_image_fails_permanently_with_the_reason(services: Services) -> None:
    job_id = _submit(services, b"%PDF-1.4 not an image", "k2")
    services.make_worker().drain()
    job = services.ledger.get_job(job_id)
    assert job and job.status == JobStatus.FAILED and job.error_kind == ErrorKind.PERMANENT
    assert "not a decodable image" in (job.last_error or "") and job.next_attempt_at is None


def test_deleted_blob_ends_skipped(services: Services) -> None:
    data = image_bytes(PALETTE["red"])
    job_id = _submit(services, data, "k3")
    for path in (services.settings.data_dir / "blobs").rglob("*"):
        if path.is_file():
            path.unlink()
    services.make_worker().drain()
    job = services.ledger.get_job(job_id)
    assert job and job.status == JobStatus.SKIPPED and "no longer exists" in (job.last_error or "")


def test_unexpected_errors_are_retried_then_given_up(services: Services) -> None:
    def broken(_: object, __: object) -> None:
        raise RuntimeError("model exploded")

    services.kinds.replace(
        JobKindSpec(kind="match_image", payload=MatchImagePayload, handler=broken, needs_embedder=True)
    )
    job_id = _submit(services, image_bytes(PALETTE["red"]), "k4")
    worker = services.make_worker()
    worker.drain()
    job = services.ledger.get_job(job_id)
    assert job and job.status == JobStatus.FAILED and job.error_kind == ErrorKind.TRANSIENT
    assert job.next_attempt_at is not None and "RuntimeError: model exploded" in (job.last_error or "")
    assert "Traceback" not in (job.last_error or "") and "test_worker.py" in (job.last_error or "")
