"""``POST /webhooks/catalog``: a signed product event in, a ``catalog_event`` job out."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from imagematch.config import Settings
from imagematch.dispatch import Dispatch
from imagematch.errors import PermanentError, TransientError
from imagematch.ledger import Clock, Ledger
from imagematch.models import Job, JobStatus
from imagematch.sources.catalog.events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignatureError,
    catalog_event_job,
    parse_catalog_event,
    verify_catalog_signature,
)
from imagematch.webhooks import RETRY_LATER, read_webhook_body, refuse_deep_json, require_webhook_secret

__all__ = ["CatalogEventAccepted", "catalog_webhook_router"]


class CatalogEventAccepted(BaseModel):
    """The ``catalog_event`` job an event became (the job fields of ``GET /v1/jobs/{id}``,
    defined here so the source does not import the API)."""

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
    prediction: None = None

    @classmethod
    def of(cls, job: Job) -> CatalogEventAccepted:
        return cls(**job.public_fields())


def catalog_webhook_router(
    settings: Settings, ledger: Ledger, *, clock: Clock, dispatch: Dispatch
) -> APIRouter:
    """``POST /webhooks/catalog``. It authenticates each request itself (signature), so it can be
    served without any proxy auth; ``dispatch`` is told the ids of jobs just persisted."""
    router = APIRouter(tags=["webhooks"])

    @router.post("/webhooks/catalog", status_code=202, response_model=CatalogEventAccepted)
    async def catalog_webhook(request: Request) -> JSONResponse:
        """A product was created, updated or deleted: persist a ``catalog_event`` job.

        Body: ``{"event": "product.created"|"product.updated", "product": {…}}`` or
        ``{"event": "product.deleted", "product_id": "…"}``. Headers: ``X-Imagematch-Timestamp``
        (unix seconds) and ``X-Imagematch-Signature: sha256=<hex HMAC-SHA256(secret,
        "<timestamp>." + body)>``. 202 with the new job; 200 with the existing one when the same
        body was delivered before; 401 bad signature; 403/415: see ``read_webhook_body``; 422
        malformed event; 503 no secret set."""
        secret = _catalog_secret(settings)
        body = await read_webhook_body(request, signed=secret is not None)
        if secret is not None:
            _check_signature(settings, secret, body, request, clock())
        refuse_deep_json(body)  # 422, not a parser's RecursionError (500)
        try:
            event, raw = parse_catalog_event(body)
        except PermanentError as exc:
            raise HTTPException(422, str(exc)) from exc
        try:
            job, created = await run_in_threadpool(ledger.submit, catalog_event_job(event, raw))
        except TransientError as exc:  # the sender retries a 503: nothing is lost
            raise HTTPException(503, f"ledger unavailable: {exc}", headers=RETRY_LATER) from exc
        if created:
            await run_in_threadpool(dispatch, [job.id])
        return JSONResponse(
            CatalogEventAccepted.of(job).model_dump(mode="json"), status_code=202 if created else 200
        )

    return router


def _catalog_secret(settings: Settings) -> str | None:
    """The signing secret; ``None`` when unsigned events are allowed and no secret is set;
    503 when neither."""
    return require_webhook_secret(
        settings.catalog_webhook_secret,
        allow_unsigned=settings.catalog_allow_unsigned,
        what="catalog webhooks",
        secret_env="IMAGEMATCH_CATALOG_WEBHOOK_SECRET",
        unsigned_env="IMAGEMATCH_CATALOG_ALLOW_UNSIGNED",
    )


def _check_signature(settings: Settings, secret: str, body: bytes, request: Request, now: datetime) -> None:
    """Refuse (401) an event whose signature does not verify."""
    try:
        verify_catalog_signature(
            secret,
            body,
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            now=now,
            tolerance_seconds=settings.catalog_webhook_tolerance_seconds,
        )
    except InvalidSignatureError as exc:
        raise HTTPException(401, str(exc)) from exc
