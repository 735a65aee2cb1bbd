"""Jobs: submit a photo (``POST /v1/images``), see where jobs stand, retry them, read predictions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from imagematch.api.image_input import IMAGE_BODY_DOC, read_image_input
from imagematch.api.schemas import JobOut, JobPage, PredictionPage
from imagematch.app import Services
from imagematch.images import sha256_hex
from imagematch.job_kinds import MatchImagePayload, image_ref_for_blob, new_job
from imagematch.models import Job, JobStatus, Prediction

__all__ = ["jobs_router", "submit_router"]


def submit_router(services: Services) -> APIRouter:
    """``POST /v1/images``: persist a photo and its job, answer 202, dispatch it."""
    router = APIRouter(tags=["jobs"])
    ledger = services.ledger

    @router.post("/v1/images", status_code=202, response_model=JobOut, openapi_extra=IMAGE_BODY_DOC)
    async def submit_image(request: Request) -> JSONResponse:
        """Persist an image and a job to match it. 202 when created; 200 with the existing job when
        the idempotency key was seen before. Default key: ``upload:<sha256>`` / ``url:<sha256>``
        (``:<type>/<id>`` appended with an entity). ``entity_type`` + ``entity_id`` put the photo
        in an entity: see ``GET /v1/entities/{type}/{id}/matches``."""
        body = await read_image_input(request, services.limits.max_bytes)
        if body.data is not None:
            digest = await run_in_threadpool(services.blobs.put, body.data)
            image_ref, default_key = image_ref_for_blob(digest), f"upload:{digest}"
        else:
            image_ref, default_key = body.url or "", f"url:{sha256_hex((body.url or '').encode())}"
        if body.entity_type and body.entity_id:  # the same photo may belong to several entities
            default_key += f":{body.entity_type}/{body.entity_id}"
        payload = MatchImagePayload(
            image=image_ref, file_name=body.file_name, entity_type=body.entity_type, entity_id=body.entity_id
        )
        new = new_job(
            payload,
            source=body.source,
            idempotency_key=body.idempotency_key or default_key,
            metadata=body.metadata,
        )
        job, created = await run_in_threadpool(ledger.submit, new)
        if created:
            await run_in_threadpool(services.dispatch, [job.id])
        # A job created just now has no prediction yet; a known one may.
        prediction = None if created else await run_in_threadpool(ledger.get_prediction, job.id)
        out = JobOut.of(job, prediction)
        return JSONResponse(out.model_dump(mode="json"), status_code=202 if created else 200)

    return router


def jobs_router(services: Services) -> APIRouter:
    """Where jobs stand (``/v1/jobs``), retries, and the prediction log (``/v1/predictions``)."""
    router = APIRouter()
    router.include_router(_job_reads(services))
    router.include_router(_retries(services))
    router.include_router(_predictions(services))
    return router


def _job_reads(services: Services) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    ledger = services.ledger

    @router.get("/v1/jobs/{job_id}", response_model=JobOut)
    async def get_job(job_id: int) -> JobOut:
        job = await run_in_threadpool(ledger.get_job, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        prediction = await run_in_threadpool(ledger.get_prediction, job_id)
        return JobOut.of(job, prediction, await run_in_threadpool(ledger.current_label, job_id))

    @router.get("/v1/jobs", response_model=JobPage)
    async def list_jobs(
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = Query(50, ge=1, le=500),
        cursor: int | None = Query(None, description="`next_cursor` of the previous page."),
    ) -> JobPage:
        """Jobs, newest first (keyset pagination)."""
        jobs: list[Job] = await run_in_threadpool(
            lambda: ledger.list_jobs(status=status, source=source, limit=limit, before_id=cursor)
        )
        return JobPage(
            jobs=[JobOut.of(j) for j in jobs],
            next_cursor=jobs[-1].id if len(jobs) == limit else None,
        )

    return router


def _retries(services: Services) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    ledger = services.ledger

    @router.post("/v1/jobs/{job_id}/retry", response_model=JobOut)
    async def retry_job(job_id: int) -> JobOut:
        """Run a failed, skipped or complete job again (attempts reset)."""
        job = await run_in_threadpool(ledger.requeue, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        await run_in_threadpool(services.dispatch, [job.id])
        return JobOut.of(job)

    @router.post("/v1/jobs/retry-failed")
    async def retry_failed(source: str | None = None) -> dict[str, int]:
        """Re-queue every failed job (optionally of one source)."""
        count: int = await run_in_threadpool(lambda: ledger.requeue_failed(source=source))
        if count:
            pending = await run_in_threadpool(lambda: ledger.list_jobs(status=JobStatus.PENDING, limit=500))
            await run_in_threadpool(services.dispatch, [j.id for j in pending])
        return {"requeued": count}

    return router


def _predictions(services: Services) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    ledger = services.ledger

    @router.get("/v1/predictions", response_model=PredictionPage)
    async def list_predictions(
        ticket_id: str | None = Query(None, description="Only answers for photos of this Zendesk ticket."),
        limit: int = Query(50, ge=1, le=500),
        cursor: int | None = None,
    ) -> PredictionPage:
        rows: list[Prediction] = await run_in_threadpool(
            lambda: ledger.list_predictions(ticket_id=ticket_id, limit=limit, before_id=cursor)
        )
        return PredictionPage(predictions=rows, next_cursor=rows[-1].id if len(rows) == limit else None)

    return router
