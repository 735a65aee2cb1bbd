"""HTTP API (FastAPI). Thin handlers over :class:`imagematch.app.Services`; OpenAPI at ``/docs``.

``POST /v1/match`` answers synchronously. ``POST /v1/images`` persists the image and a job first,
answers 202, and lets the ledger's workers process it — nothing runs as request-scoped background
work, so a restart never loses an accepted image.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from imagematch import __version__
from imagematch.access import AccessControl
from imagematch.app import Services
from imagematch.config import Settings
from imagematch.console import console_router
from imagematch.errors import (
    EmbedderMismatchError,
    IndexNotBuiltError,
    PermanentError,
    TransientError,
)
from imagematch.images import decode_image, sha256_hex
from imagematch.ledger import Clock, Ledger, utcnow
from imagematch.models import ImageJob, JobStatus, MatchResult, NewJob, Prediction, Product
from imagematch.pipeline import image_ref_for_blob
from imagematch.sources.catalog import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignatureError,
    catalog_event_job,
    parse_catalog_event,
    pending_catalog_jobs,
    verify_catalog_signature,
)
from imagematch.webhooks import read_webhook_body, zendesk_webhook_router
from imagematch.worker import Dispatch, WorkerPool

__all__ = ["catalog_webhook_router", "create_app", "create_webhook_app"]

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "idempotency_key": {"type": "string"},
                        "source": {"type": "string"},
                        "metadata": {"type": "string", "description": "JSON object"},
                    },
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "idempotency_key": {"type": "string"},
                        "source": {"type": "string"},
                        "metadata": {"type": "object"},
                    },
                    "required": ["url"],
                }
            },
        },
    }
}


class ImageInput(BaseModel):
    """An image by upload (``data``) or by ``url``, with optional job fields."""

    url: str | None = None
    data: bytes | None = None
    file_name: str | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=512)
    source: str = Field("api", min_length=1, max_length=64)
    metadata: dict[str, Any] = Field(default_factory=dict)


class JobOut(BaseModel):
    id: int
    status: JobStatus
    kind: str
    source: str
    idempotency_key: str
    attempts: int
    error_kind: str | None
    error: str | None
    next_attempt_at: str | None
    created_at: str
    updated_at: str
    prediction: Prediction | None = None

    @classmethod
    def of(cls, job: ImageJob, prediction: Prediction | None = None) -> JobOut:
        return cls(
            id=job.id,
            status=job.status,
            kind=job.kind,
            source=job.source,
            idempotency_key=job.idempotency_key,
            attempts=job.attempts,
            error_kind=job.error_kind,
            error=job.last_error,
            next_attempt_at=job.next_attempt_at.isoformat() if job.next_attempt_at else None,
            created_at=job.created_at.isoformat(),
            updated_at=job.updated_at.isoformat(),
            prediction=prediction,
        )


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: int | None = Field(None, description="Pass as `cursor` for the next page.")


class PredictionPage(BaseModel):
    predictions: list[Prediction]
    next_cursor: int | None = None


def _error(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


async def _read_image_input(request: Request, max_bytes: int) -> ImageInput:
    """Accept multipart (field ``file``) or JSON (``url``); 415/422 with a clear message otherwise."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            async with request.form() as form:  # closes the spooled upload files
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise _error(422, "multipart body needs a `file` field holding the image")
                data = await upload.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise _error(413, f"image is larger than the limit of {max_bytes:,} bytes")
                metadata = form.get("metadata")
                return ImageInput(
                    data=data,
                    file_name=upload.filename,
                    idempotency_key=_form_str(form.get("idempotency_key")),
                    source=_form_str(form.get("source")) or "api",
                    metadata=json.loads(metadata) if isinstance(metadata, str) and metadata else {},
                )
        if content_type.startswith("application/json"):
            body = ImageInput.model_validate(await request.json())
            if not body.url or body.data is not None:
                raise _error(422, "JSON body needs a `url` of the image")
            return body
    except (ValidationError, json.JSONDecodeError, ValueError) as exc:
        raise _error(422, f"invalid request body: {exc}") from exc
    raise _error(415, 'send the image as multipart/form-data (field `file`) or JSON {"url": …}')


def _product_filter(category: str | None, meta: list[str]) -> Callable[[Product], bool] | None:
    """``category`` and ``key=value`` metadata conditions as one predicate; 422 for a malformed one."""
    conditions = []
    for condition in meta:
        key, sep, value = condition.partition("=")
        if not sep or not key:
            raise _error(422, f"meta filter {condition!r} must look like key=value")
        conditions.append((key, value))
    if not category and not conditions:
        return None

    def accept(product: Product) -> bool:
        if category and product.category != category:
            return False
        return all(str(product.metadata.get(key)) == value for key, value in conditions)

    return accept


def _form_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _nudger(pool: WorkerPool | None, dispatch: Dispatch | None) -> Callable[[list[int]], None]:
    def nudge(job_ids: list[int]) -> None:
        if dispatch and job_ids:
            dispatch(job_ids)
        if pool:
            pool.wake.set()

    return nudge


def _pool_lifespan(pool: WorkerPool | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if pool:
            pool.start()
        try:
            yield
        finally:
            if pool:
                await run_in_threadpool(pool.stop)

    return lifespan


def create_webhook_app(
    settings: Settings,
    ledger: Ledger,
    *,
    clock: Clock = utcnow,
    pool: WorkerPool | None = None,
    dispatch: Dispatch | None = None,
) -> FastAPI:
    """Only the signature-verified webhook routes and ``/healthz``: safe to expose without other
    authentication (on Modal: the ``webhooks`` endpoint). Needs no model or index."""
    app = FastAPI(
        title="imagematch webhooks",
        version=__version__,
        description="Signed webhooks in; each persists a job and answers 202.",
        lifespan=_pool_lifespan(pool),
    )

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    nudge = _nudger(pool, dispatch)
    app.include_router(zendesk_webhook_router(settings, ledger, clock=clock, nudge=nudge))
    app.include_router(catalog_webhook_router(settings, ledger, clock=clock, nudge=nudge))
    return app


def create_app(
    services: Services,
    *,
    pool: WorkerPool | None = None,
    dispatch: Dispatch | None = None,
    access: AccessControl | None = None,
) -> FastAPI:
    """The API over ``services``.

    ``pool`` (local service) runs for the app's lifetime and is woken when jobs arrive.
    ``dispatch`` is told the ids of jobs to run now (on Modal: spawn a GPU call); it is only a
    nudge — jobs are already persisted, and the sweep dispatches anything a nudge missed.
    ``access`` guards every route but ``/healthz`` and the webhooks (default: the settings' tokens).
    """

    nudge = _nudger(pool, dispatch)
    app = FastAPI(
        title="imagematch",
        version=__version__,
        description="Which catalog product is in this photo? Product-level top-k with scores.",
        lifespan=_pool_lifespan(pool),
    )
    limits = services.limits
    app.include_router(
        zendesk_webhook_router(services.settings, services.ledger, clock=services.clock, nudge=nudge)
    )

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return run_in_threadpool(fn, *args)

    @app.exception_handler(IndexNotBuiltError)
    async def _no_index(_: Request, exc: IndexNotBuiltError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(EmbedderMismatchError)
    async def _mismatch(_: Request, exc: EmbedderMismatchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post("/v1/match", response_model=MatchResult, tags=["match"], openapi_extra=_BODY_DOC)
    async def match(
        request: Request,
        top_k: int | None = Query(None, ge=1, le=100),
        category: str | None = Query(None, description="Only products of this category."),
        meta: list[str] = Query(
            [], description="Only products whose metadata has key=value (repeat for several; all must hold)."
        ),
        min_score: float | None = Query(None, description="Below this: no_confident_match."),
    ) -> MatchResult:
        """Match one image now: the top products, best first, with scores.

        Filters (``category``, ``meta``) are applied to the ranking, fetching deeper until
        ``top_k`` products pass: exact, and cheap at catalog sizes where the rarest filter still
        matches a few percent of products."""
        body = await _read_image_input(request, limits.max_bytes)
        accept = _product_filter(category, meta)

        def work() -> MatchResult:
            data = body.data if body.data is not None else services.fetcher.fetch(body.url or "")
            image = decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
            return services.matcher.match_image(image, top_k=top_k, min_score=min_score, accept=accept)

        try:
            result: MatchResult = await run(work)
        except PermanentError as exc:
            raise _error(422, str(exc)) from exc
        except TransientError as exc:
            raise _error(502, str(exc)) from exc
        return result

    @app.post("/v1/images", status_code=202, response_model=JobOut, tags=["jobs"], openapi_extra=_BODY_DOC)
    async def submit_image(request: Request) -> JSONResponse:
        """Persist an image and a job to match it. 202 when created; 200 with the existing job when
        the idempotency key was seen before. Default key: ``upload:<sha256>`` / ``url:<sha256>``."""
        body = await _read_image_input(request, limits.max_bytes)
        if body.data is not None:
            digest = await run(services.blobs.put, body.data)
            image_ref, default_key = image_ref_for_blob(digest), f"upload:{digest}"
        else:
            image_ref, default_key = body.url or "", f"url:{sha256_hex((body.url or '').encode())}"
        payload: dict[str, Any] = {"image": image_ref}
        if body.file_name:
            payload["file_name"] = body.file_name
        new = NewJob(
            source=body.source,
            idempotency_key=body.idempotency_key or default_key,
            payload=payload,
            metadata=body.metadata,
        )
        job, created = await run(services.ledger.submit, new)
        if created:
            await run(nudge, [job.id])
        # A job created just now has no prediction yet; a known one may.
        prediction = None if created else await run(services.ledger.get_prediction, job.id)
        out = JobOut.of(job, prediction)
        return JSONResponse(out.model_dump(mode="json"), status_code=202 if created else 200)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
    async def get_job(job_id: int) -> JobOut:
        job = await run(services.ledger.get_job, job_id)
        if job is None:
            raise _error(404, f"no job {job_id}")
        return JobOut.of(job, await run(services.ledger.get_prediction, job_id))

    @app.get("/v1/jobs", response_model=JobPage, tags=["jobs"])
    async def list_jobs(
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = Query(50, ge=1, le=500),
        cursor: int | None = Query(None, description="`next_cursor` of the previous page."),
    ) -> JobPage:
        """Jobs, newest first (keyset pagination)."""
        jobs: list[ImageJob] = await run(
            lambda: services.ledger.list_jobs(status=status, source=source, limit=limit, before_id=cursor)
        )
        return JobPage(
            jobs=[JobOut.of(j) for j in jobs],
            next_cursor=jobs[-1].id if len(jobs) == limit else None,
        )

    @app.post("/v1/jobs/{job_id}/retry", response_model=JobOut, tags=["jobs"])
    async def retry_job(job_id: int) -> JobOut:
        """Run a failed, skipped or complete job again (attempts reset)."""
        job = await run(services.ledger.requeue, job_id)
        if job is None:
            raise _error(404, f"no job {job_id}")
        await run(nudge, [job.id])
        return JobOut.of(job)

    @app.post("/v1/jobs/retry-failed", tags=["jobs"])
    async def retry_failed(source: str | None = None) -> dict[str, int]:
        """Re-queue every failed job (optionally of one source)."""
        count: int = await run(lambda: services.ledger.requeue_failed(source=source))
        if count:
            pending = await run(lambda: services.ledger.list_jobs(status=JobStatus.PENDING, limit=500))
            await run(nudge, [j.id for j in pending])
        return {"requeued": count}

    @app.get("/v1/predictions", response_model=PredictionPage, tags=["jobs"])
    async def list_predictions(
        ticket_id: str | None = None,
        limit: int = Query(50, ge=1, le=500),
        cursor: int | None = None,
    ) -> PredictionPage:
        rows: list[Prediction] = await run(
            lambda: services.ledger.list_predictions(ticket_id=ticket_id, limit=limit, before_id=cursor)
        )
        return PredictionPage(predictions=rows, next_cursor=rows[-1].id if len(rows) == limit else None)

    @app.get("/v1/stats", tags=["ops"])
    async def stats() -> dict[str, Any]:
        """Job counts by status; the index's version, size, recipe and freshness (the last live
        catalog event applied and its age), products without images and deleted-but-not-purged."""
        counts = await run(services.ledger.count_by_status)
        out: dict[str, Any] = {
            "embedder": services.embedder.embedder_id,
            "jobs": {str(k): v for k, v in counts.items()},
        }
        out["pending_catalog_jobs"] = await run(pending_catalog_jobs, services.ledger)  # not applied yet
        try:
            index = await run(services.index.get)
            out["index"] = index.stats(services.clock())
        except (IndexNotBuiltError, EmbedderMismatchError) as exc:
            out["index"] = {"version": None, "error": str(exc)}
        return out

    app.include_router(
        catalog_webhook_router(services.settings, services.ledger, clock=services.clock, nudge=nudge)
    )
    app.include_router(console_router(services, dispatch=nudge))
    (access or AccessControl.from_settings(services.settings)).install(app)
    return app


def catalog_webhook_router(settings: Settings, ledger: Ledger, *, clock: Clock, nudge: Dispatch) -> APIRouter:
    """``POST /webhooks/catalog``. It authenticates each request itself (signature), so it can be
    served without any proxy auth, alone (:func:`create_webhook_app`) or in :func:`create_app`.
    ``nudge`` is told the ids of jobs just persisted."""
    router = APIRouter(tags=["webhooks"])

    @router.post("/webhooks/catalog", status_code=202, response_model=JobOut)
    async def catalog_webhook(request: Request) -> JSONResponse:
        """A product was created, updated or deleted: persist a ``catalog_event`` job.

        Body: ``{"event": "product.created"|"product.updated", "product": {…}}`` or
        ``{"event": "product.deleted", "product_id": "…"}``. Headers: ``X-Imagematch-Timestamp``
        (unix seconds) and ``X-Imagematch-Signature: sha256=<hex HMAC-SHA256(secret,
        "<timestamp>." + body)>``. 202 with the new job; 200 with the existing one when the same
        body was delivered before; 401 bad signature; 422 malformed event; 503 no secret set.
        """
        secret = settings.catalog_webhook_secret
        if secret is None and not settings.catalog_allow_unsigned:
            raise _error(
                503,
                "catalog webhooks are disabled: set IMAGEMATCH_CATALOG_WEBHOOK_SECRET "
                "(or IMAGEMATCH_CATALOG_ALLOW_UNSIGNED=true for local trials)",
            )
        body = await read_webhook_body(request)
        if secret is not None:
            try:
                verify_catalog_signature(
                    secret.get_secret_value(),
                    body,
                    signature=request.headers.get(SIGNATURE_HEADER),
                    timestamp=request.headers.get(TIMESTAMP_HEADER),
                    now=clock(),
                    tolerance_seconds=settings.catalog_webhook_tolerance_seconds,
                )
            except InvalidSignatureError as exc:
                raise _error(401, str(exc)) from exc
        try:
            event, raw = parse_catalog_event(body)
        except PermanentError as exc:
            raise _error(422, str(exc)) from exc
        job, created = await run_in_threadpool(ledger.submit, catalog_event_job(event, raw))
        if created:
            await run_in_threadpool(nudge, [job.id])
        return JSONResponse(JobOut.of(job).model_dump(mode="json"), status_code=202 if created else 200)

    return router
