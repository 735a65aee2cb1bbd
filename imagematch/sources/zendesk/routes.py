"""``POST /webhooks/zendesk``: a signed Zendesk ticket event in, a ``zendesk_ticket`` job out."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from imagematch.config import Settings
from imagematch.dispatch import Dispatch
from imagematch.errors import TransientError
from imagematch.ledger import Clock, Ledger
from imagematch.models import Job, JobStatus
from imagematch.sources.zendesk.jobs import ticket_job
from imagematch.sources.zendesk.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookPayloadError,
    WebhookSignatureError,
    parse_delivery,
    verify_signature,
)
from imagematch.webhooks import RETRY_LATER, read_webhook_body, refuse_deep_json, require_webhook_secret

__all__ = ["WebhookAccepted", "zendesk_webhook_router"]


class WebhookAccepted(BaseModel):
    job_id: int = Field(description="The `zendesk_ticket` job that scans the ticket.")
    ticket_id: str
    status: JobStatus
    duplicate: bool = Field(description="This delivery was accepted before; nothing new was queued.")


def zendesk_webhook_router(
    settings: Settings, ledger: Ledger, *, clock: Clock, dispatch: Dispatch
) -> APIRouter:
    """``POST /webhooks/zendesk``: verify the signature (before anything else), persist a
    ``zendesk_ticket`` job, answer 202; ``dispatch`` is told the new job's id."""
    router = APIRouter(tags=["webhooks"])

    @router.post("/webhooks/zendesk", status_code=202, response_model=WebhookAccepted)
    async def zendesk_webhook(request: Request) -> JSONResponse:
        """A Zendesk ticket event. 202 when a scan of the ticket is queued; 200 when this very
        delivery was accepted before; 401 bad or expired signature (nothing is stored); 403/415
        see ``read_webhook_body``; 422 no ticket id in the body; 503 no signing secret configured."""
        secret = _zendesk_secret(settings)
        body = await read_webhook_body(request, signed=secret is not None)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if secret is not None:
            signature = request.headers.get(SIGNATURE_HEADER)
            _check_signature(settings, secret, body, signature, timestamp, clock())
        refuse_deep_json(body)  # 422, not a parser's RecursionError (500)
        try:
            # Unsigned (local trial) deliveries have no timestamp: each one counts as new.
            delivery = parse_delivery(body, timestamp=timestamp or clock().isoformat())
        except WebhookPayloadError as exc:
            raise HTTPException(422, str(exc)) from exc
        metadata = {"event_type": delivery.event_type} if delivery.event_type else {}
        new_job = ticket_job(delivery.ticket_id, delivery.delivery_id, metadata=metadata)

        def accept() -> tuple[Job, bool]:  # one thread-pool hop for both (a burst's CPU)
            job, created = ledger.submit(new_job)
            if created:
                dispatch([job.id])
            return job, created

        try:
            job, created = await run_in_threadpool(accept)
        except TransientError as exc:  # Zendesk retries a 503: nothing is lost
            raise HTTPException(503, f"ledger unavailable: {exc}", headers=RETRY_LATER) from exc
        out = WebhookAccepted(
            job_id=job.id, ticket_id=delivery.ticket_id, status=job.status, duplicate=not created
        )
        return JSONResponse(out.model_dump(mode="json"), status_code=202 if created else 200)

    return router


def _zendesk_secret(settings: Settings) -> str | None:
    """The signing secret; ``None`` when unsigned deliveries are allowed and no secret is set;
    503 when neither."""
    return require_webhook_secret(
        settings.zendesk_webhook_secret,
        allow_unsigned=settings.zendesk_allow_unsigned,
        what="Zendesk webhooks",
        secret_env="IMAGEMATCH_ZENDESK_WEBHOOK_SECRET to the webhook's signing secret",
        unsigned_env="IMAGEMATCH_ZENDESK_ALLOW_UNSIGNED",
    )


def _check_signature(
    settings: Settings, secret: str, body: bytes, signature: str | None, timestamp: str | None, now: datetime
) -> None:
    """Refuse (401) a delivery whose signature does not verify."""
    try:
        verify_signature(
            secret=secret,
            body=body,
            signature=signature,
            timestamp=timestamp,
            now=now,
            tolerance_seconds=settings.zendesk_signature_tolerance_seconds,
        )
    except WebhookSignatureError as exc:
        raise HTTPException(401, f"Zendesk webhook refused: {exc}") from exc
