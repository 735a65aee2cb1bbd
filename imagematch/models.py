"""Domain types shared by the library, the API and the ledger backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from imagematch.calibration import Band
from imagematch.log_context import current_request_id
from imagematch.quality import QualityReport

__all__ = [
    "REFERENCE_COLUMNS",
    "CatalogViews",
    "ErrorKind",
    "Job",
    "JobKind",
    "JobStatus",
    "Match",
    "MatchRequest",
    "MatchResult",
    "NewJob",
    "NewPrediction",
    "Prediction",
    "Product",
    "ProductScoring",
    "Whitening",
]


class Product(BaseModel):
    """A catalog product. ``images`` are URIs: relative paths, file:// or http(s) URLs."""

    id: str = Field(min_length=1)
    name: str = ""
    category: str = ""
    description: str = ""
    images: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Match(BaseModel):
    """One product in a ranked answer, with the reference image that matched best."""

    product_id: str
    name: str
    score: float
    image_id: str
    category: str = ""


class MatchResult(BaseModel):
    """A product-level ranking for one query image, and what produced it."""

    matches: list[Match]
    embedder_id: str
    index_version: str
    latency_ms: float
    no_confident_match: bool = False
    confidence: float | None = Field(
        None,
        description="Probability in [0, 1] that the top-1 is right (imagematch.calibration); "
        "None when the model has no fit or the answer predates confidence.",
    )
    band: Band | None = Field(None, description="confident / check / no_match, from the confidence.")


class MatchRequest(BaseModel):
    """How to rank for one ``POST /v1/match``: depth, threshold and product filters (all must hold).
    Plain data, so it can be sent to the process that holds the model."""

    top_k: int | None = Field(None, ge=1, le=100)
    min_score: float | None = None
    category: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)

    def product_filter(self) -> Callable[[Product], bool] | None:
        """The filters as one predicate, or ``None`` when there are none."""
        if not self.category and not self.meta:
            return None

        def accept(product: Product) -> bool:
            if self.category and product.category != self.category:
                return False
            return all(str(product.metadata.get(key)) == value for key, value in self.meta.items())

        return accept


class CatalogViews(StrEnum):
    """Which framings of a catalog image are embedded (and averaged)."""

    SINGLE = "single"  # the image as it is
    MULTI = "multi"  # 14: full, 0.8 and 0.6 centre zooms, four 0.75 corner crops; each mirrored
    SHOOT = "shoot"  # the 14 above + shoot-like copies (light, colour cast, blur, JPEG, perspective)


class Whitening(StrEnum):
    PRODUCT = "product"  # within-product covariance of catalog views (uses the catalog's grouping)
    IMAGE = "image"  # within-image covariance: augmentation variance only, no product grouping
    NONE = "none"


class ProductScoring(StrEnum):
    CENTROID = "centroid"  # cosine to the product's mean image vector
    MAX = "max"  # cosine to the product's best-matching image


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"
    SKIPPED = "skipped"


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class JobKind(StrEnum):
    """The core's own job kinds (their payloads' ``KIND``). A source's kinds are named only by
    its payloads' ``KIND`` (e.g. ``ZendeskImagePayload.KIND``): the core never names them."""

    MATCH_IMAGE = "match_image"
    REMATCH = "rematch"  # recompute one entity's matches from stored photo vectors (catalog changed)
    LEARN = "learn"  # recompute one product's learned references from its labels (imagematch.learning)


class NewJob(BaseModel):
    """A job to persist. ``idempotency_key`` is unique: submitting it again returns the first job."""

    kind: str = JobKind.MATCH_IMAGE
    source: str = "api"
    idempotency_key: str = Field(min_length=1, max_length=512)
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The request (or the job's own request) that caused this job: bound by the HTTP edge and the
    # worker (imagematch.log_context), so follow-up jobs inherit it and logs join up by it.
    request_id: str | None = Field(default_factory=current_request_id, max_length=128)


class Job(BaseModel):
    """A persisted job and where it stands."""

    id: int
    kind: str
    source: str
    idempotency_key: str
    status: JobStatus
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    error_kind: ErrorKind | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    locked_until: datetime | None = None
    worker_id: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    request_id: str | None = None  # the X-Request-ID (or generated id) of the request behind it

    def public_fields(self) -> dict[str, Any]:
        """The job as the API shows it (``JobOut`` and a catalog event's acceptance share it):
        no payload, lease or worker; times as ISO 8601."""
        return {
            "id": self.id,
            "status": self.status,
            "kind": self.kind,
            "source": self.source,
            "idempotency_key": self.idempotency_key,
            "attempts": self.attempts,
            "error_kind": self.error_kind,
            "error": self.last_error,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class NewPrediction(BaseModel):
    """What a worker records when a match job completes."""

    matches: list[Match]
    embedder_id: str
    index_version: str
    latency_ms: float
    no_confident_match: bool = False
    confidence: float | None = None  # see MatchResult; None on answers made before confidence
    band: Band | None = None
    source: str = "api"
    file_name: str | None = None
    image_url: str | None = None
    references: dict[str, str] = Field(
        default_factory=dict,
        description="What the photo's source calls it (e.g. a Zendesk ticket_id, comment_id, "
        "attachment_id); filled from the job's payload, stored for lookups.",
    )
    image_sha256: str | None = Field(
        None, description="SHA-256 of the photo's bytes: with embedder_id, the key of its stored vector."
    )
    quality: QualityReport | None = Field(
        None, description="The quality tier's verdict (imagematch.quality): low_quality, reasons, advice."
    )

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def reference_columns(self) -> dict[str, str | None]:
        """The references the prediction log stores in indexed columns (one value per column)."""
        return {column: self.references.get(column) for column in REFERENCE_COLUMNS}


# Prediction-log columns that hold references, so that lookups by them use an index. The table
# predates typed payloads; sources put only their own names in ``references``.
REFERENCE_COLUMNS = ("ticket_id", "comment_id", "attachment_id")


class Prediction(NewPrediction):
    """A logged answer (table ``image_prediction_log``): at most one per job."""

    id: int
    job_id: int
    best_product_id: str | None = None
    best_score: float | None = None
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _references_from_columns(cls, data: Any) -> Any:
        """A stored row carries its references as columns: gather them."""
        if isinstance(data, dict) and "references" not in data:
            data = dict(data)
            columns = {c: data.pop(c) for c in REFERENCE_COLUMNS if c in data}
            data["references"] = {c: str(v) for c, v in columns.items() if v is not None}
        return data
