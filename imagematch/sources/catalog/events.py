"""Catalog webhooks: signed product events in, durable ``catalog_event`` jobs out.

A shop backend sends ``POST /webhooks/catalog`` with a JSON event::

    {"event": "product.created" | "product.updated", "product": {"id", "name", "images": [...], …}}
    {"event": "product.deleted", "product_id": "…"}

signed with a shared secret: ``X-Imagematch-Timestamp: <unix seconds>`` and
``X-Imagematch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``. The API checks
the signature (:func:`verify_catalog_signature`), parses the event (:func:`parse_catalog_event`)
and persists a job keyed by a hash of the body (:func:`catalog_event_key`), so a redelivered event
is one job. A worker then runs :class:`CatalogEventHandler`, which hands the event to a
:class:`CatalogUpdater` with the job id as its ``sequence``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from imagematch.catalog_sync import CatalogUpdater
from imagematch.errors import PermanentError, SubjectGoneError
from imagematch.ledger import Ledger
from imagematch.models import Job, JobStatus, NewJob, Product
from imagematch.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignatureError,
    verify_signature,
)
from imagematch.signing import signed_headers as sign_catalog_event

__all__ = [
    "CATALOG_EVENT_KIND",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CatalogEvent",
    "CatalogEventHandler",
    "CatalogUpdater",
    "InvalidSignatureError",
    "ProductChanged",
    "ProductDeleted",
    "catalog_event_job",
    "catalog_event_key",
    "parse_catalog_event",
    "pending_catalog_jobs",
    "sign_catalog_event",
    "verify_catalog_signature",
]

CATALOG_EVENT_KIND = "catalog_event"  # the one name of the kind (its payload is a union of events)

JOB_SOURCE = "catalog"


class _Event(BaseModel):
    # Unknown fields are accepted and ignored (senders may add their own), but they still count
    # in the idempotency key: see catalog_event_key.
    model_config = ConfigDict(extra="ignore")

    event_id: str | None = Field(
        None, max_length=200, description="The sender's id of this change; makes a revert distinct."
    )
    occurred_at: datetime | None = Field(None, description="When the change happened (informational).")


class ProductChanged(_Event):
    """A product was created or updated: ``product`` is its complete new state."""

    event: Literal["product.created", "product.updated"]
    product: Product

    @field_validator("product")
    @classmethod
    def _http_images_only(cls, product: Product) -> Product:
        # The worker downloads these: only public web URLs, never local paths or file:// URIs.
        for url in product.images:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"images must be http(s) URLs; got {url[:200]!r}")
        page = product.metadata.get("url")
        if page is not None and urlsplit(str(page).strip()).scheme not in ("http", "https"):
            # The console links to it: a javascript: or data: URL would run in the operator's session.
            raise ValueError(f"metadata.url must be an http(s) URL; got {str(page)[:200]!r}")
        return product

    @property
    def product_id(self) -> str:
        return self.product.id


class ProductDeleted(_Event):
    """A product was deleted. ``{"product": {"id": …}}`` is accepted in place of ``product_id``."""

    event: Literal["product.deleted"]
    product_id: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _id_from_product(cls, data: Any) -> Any:
        if isinstance(data, dict) and "product_id" not in data and isinstance(data.get("product"), dict):
            return {**data, "product_id": data["product"].get("id")}
        return data


CatalogEvent = Annotated[ProductChanged | ProductDeleted, Field(discriminator="event")]
_EVENT: TypeAdapter[ProductChanged | ProductDeleted] = TypeAdapter(CatalogEvent)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"][1:])  # loc[0] is the union's tag: the event
        parts.append(f"{where or 'body'}: {error['msg']}")
    return "; ".join(parts)


def parse_catalog_event(body: bytes) -> tuple[ProductChanged | ProductDeleted, Any]:
    """The validated event and the raw JSON it came from.

    Raises PermanentError with a readable reason when the body is not JSON or not a valid event.
    """
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PermanentError(f"body is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("event") not in {
        "product.created",
        "product.updated",
        "product.deleted",
    }:
        raise PermanentError('"event" must be one of product.created, product.updated, product.deleted')
    try:
        return _EVENT.validate_python(raw), raw
    except ValidationError as exc:
        raise PermanentError(f"invalid {raw['event']} event: {_describe(exc)}") from exc


def catalog_event_key(event: ProductChanged | ProductDeleted, raw: Any) -> str:
    """The job's idempotency key: the product id and a SHA-256 of the body's JSON (canonical: key
    order and whitespace do not matter). The same body delivered twice is one job; any difference,
    such as an ``event_id``, makes a new one."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"catalog:{event.product_id[:200]}:{digest}"


def catalog_event_job(event: ProductChanged | ProductDeleted, raw: Any) -> NewJob:
    """The job that applies ``event``; its payload is the validated event."""
    return NewJob(
        kind=CATALOG_EVENT_KIND,
        source=JOB_SOURCE,
        idempotency_key=catalog_event_key(event, raw),
        payload=event.model_dump(mode="json", exclude_none=True),
        metadata={"event": event.event, "product_id": event.product_id},
    )


def pending_catalog_jobs(ledger: Ledger) -> int:
    """Catalog events accepted but not applied yet: ``catalog_event`` jobs pending or processing
    (failed ones waiting for a retry are not counted)."""
    counts = ledger.count_by_status(kind=CATALOG_EVENT_KIND)
    return counts[JobStatus.PENDING] + counts[JobStatus.PROCESSING]


class CatalogEventHandler:
    """The worker's handler for ``catalog_event`` jobs: applies the event through ``updater``.

    Deleting an unknown product skips the job (nothing to do). Errors of the updater propagate,
    so the retry policy decides (transient: retried; permanent: failed).
    """

    def __init__(self, updater: CatalogUpdater) -> None:
        self.updater = updater

    def __call__(self, job: Job, event: ProductChanged | ProductDeleted) -> None:
        if isinstance(event, ProductDeleted):
            if not self.updater.delete_product(event.product_id, sequence=job.id):
                raise SubjectGoneError(f"product {event.product_id!r} is not in the index")
        else:
            self.updater.upsert_product(event.product, sequence=job.id)


def verify_catalog_signature(
    secret: str,
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
    tolerance_seconds: float,
) -> None:
    """:func:`imagematch.signing.verify_signature` (raises InvalidSignatureError)."""
    verify_signature(
        secret, body, signature=signature, timestamp=timestamp, now=now, tolerance_seconds=tolerance_seconds
    )
