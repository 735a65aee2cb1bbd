"""What the console pages show, read from the ledger, the served index and the thumbnail store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from imagematch import operations
from imagematch.app import Services
from imagematch.console.listing import JobFilter, job_entity, scan_jobs
from imagematch.entities import EntityRef
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.fetch import read_uri
from imagematch.index import IndexedImage, ProductIndex
from imagematch.ledger import Ledger
from imagematch.models import ErrorKind, Job, JobStatus, Match, Prediction

__all__ = [
    "JobRow",
    "ReferenceImage",
    "current_label",
    "hourly_activity",
    "job_row",
    "last_sweep",
    "product_thumbnail",
    "recent_matches",
    "reference_image",
    "service_stats",
    "web_link",
]


def web_link(value: object) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None: a catalog's ``metadata.url`` is
    only a link when it cannot run script (``javascript:``, ``data:``…) or point off-scheme.
    (``urlsplit`` drops the tabs and newlines a browser would, before the scheme is read.)"""
    text = str(value or "").strip()
    parts = urlsplit(text)
    return text if parts.scheme in ("http", "https") and parts.netloc else None


@dataclass
class JobRow:
    """One line of the jobs table (and the head of a job's page)."""

    job: Job
    prediction: Prediction | None
    photo: str | None  # thumbnail digest
    ticket_url: str | None
    label: Any = None  # the job's current label (helper ``learn``'s ``Ledger.current_label``), if any

    @property
    def best(self) -> Match | None:
        return self.prediction.matches[0] if self.prediction and self.prediction.matches else None

    @property
    def in_flight(self) -> bool:
        return self.job.status in (JobStatus.PENDING, JobStatus.PROCESSING)

    @property
    def entity(self) -> EntityRef | None:
        return job_entity(self.job)

    @property
    def permanent(self) -> bool:
        """Failed for a reason a retry will meet again (not a decodable image, 404, too large)."""
        return self.job.status is JobStatus.FAILED and self.job.error_kind is ErrorKind.PERMANENT

    @property
    def photo_url(self) -> str | None:
        """The URL the photo was fetched from, when it was given by URL."""
        image = self.job.payload.get("image")
        return image if isinstance(image, str) and image.startswith(("http://", "https://")) else None

    @property
    def error_summary(self) -> str:
        """The error's first line, short enough to sit next to the status."""
        first = (self.job.last_error or "").strip().splitlines()
        return first[0][:120] if first else ""

    @property
    def confidence(self) -> float | None:
        """The probability the top-1 is right (``MatchResult.confidence``; None on old answers)."""
        value = getattr(self.prediction, "confidence", None)
        return float(value) if isinstance(value, int | float) else None

    @property
    def band(self) -> str | None:
        """``confident`` / ``check`` / ``no_match``; old answers without a band fall back to the
        no-confident-match flag."""
        if self.prediction is None:
            return None
        band = getattr(self.prediction, "band", None)
        if isinstance(band, str) and band:
            return band
        return "no_match" if self.prediction.no_confident_match or not self.prediction.matches else None

    @property
    def low_quality(self) -> bool:
        quality = self.prediction.quality if self.prediction else None
        return bool(quality and quality.low_quality)


def ticket_url(services: Services, job: Job) -> str | None:
    """The agent-facing URL of the job's Zendesk ticket, when Zendesk is configured."""
    ticket = job.payload.get("ticket_id")
    settings = services.settings
    if ticket is None:
        return None
    if settings.zendesk_subdomain:
        return f"https://{settings.zendesk_subdomain}.zendesk.com/agent/tickets/{ticket}"
    if settings.zendesk_base_url:
        return f"{settings.zendesk_base_url.rstrip('/')}/agent/tickets/{ticket}"
    return None


def current_label(services: Services, job_id: int) -> Any:
    """The job's current label, or None (also when this ledger keeps no labels yet)."""
    lookup = getattr(services.ledger, "current_label", None)
    return lookup(job_id) if callable(lookup) else None


def job_row(services: Services, job: Job, *, with_label: bool = False) -> JobRow:
    prediction = services.ledger.get_prediction(job.id) if job.status is JobStatus.COMPLETE else None
    label = current_label(services, job.id) if with_label and prediction else None
    return JobRow(job, prediction, services.thumbnails.job_photo(job.id), ticket_url(services, job), label)


@dataclass(frozen=True)
class ReferenceImage:
    image_id: str
    uri: str
    digest: str | None  # thumbnail digest, None when no thumbnail could be made


def _ensure_thumbnail(services: Services, image: IndexedImage) -> str | None:
    if not services.thumbnails.has(image.sha256):
        services.thumbnails.ensure_catalog(
            [(image.uri, image.sha256)],
            lambda uri: read_uri(uri, services.fetcher),
            services.limits,
        )
    return image.sha256 if services.thumbnails.has(image.sha256) else None


def reference_images(services: Services, index: ProductIndex, product_id: str) -> list[ReferenceImage]:
    images = [index.images[vid] for vid in index.product_vector_ids(product_id) if vid in index.images]
    return [ReferenceImage(i.image_id, i.uri, _ensure_thumbnail(services, i)) for i in images]


def product_thumbnail(services: Services, index: ProductIndex, product_id: str) -> str | None:
    """The thumbnail digest of the product's first indexed image (made on first use)."""
    for vid in index.product_vector_ids(product_id):
        if vid in index.images:
            return _ensure_thumbnail(services, index.images[vid])
    return None


def reference_image(services: Services, index: ProductIndex, match: Match) -> ReferenceImage | None:
    """The reference image a match was closest to (``image_id`` is ``<product>/<sha prefix>``)."""
    for image in reference_images(services, index, match.product_id):
        if image.image_id == match.image_id:
            return image
    return None


def served_index(services: Services) -> ProductIndex | None:
    try:
        return services.index.get()
    except (IndexNotBuiltError, EmbedderMismatchError):
        return None


def service_stats(services: Services) -> dict[str, Any]:
    """The figures of ``GET /v1/stats`` (the same function computes both)."""
    from imagematch.api.stats import collect_stats  # the API package includes this console

    return collect_stats(services)


@dataclass
class HourBucket:
    start: datetime
    processed: int = 0
    failed: int = 0


@dataclass
class Activity:
    hours: list[HourBucket] = field(default_factory=list)
    complete_scan: bool = True  # False: more jobs than MAX_SCAN in the window, the chart undercounts


def hourly_activity(ledger: Ledger, now: datetime, *, max_scan: int = 5000) -> Activity:
    """Jobs finished (complete) and failed per hour over the last 24 h, oldest hour first."""
    top = now.replace(minute=0, second=0, microsecond=0)
    hours = [HourBucket(top - timedelta(hours=23 - n)) for n in range(24)]
    window_start = hours[0].start
    activity = Activity(hours)
    scanned = 0
    for job in scan_jobs(ledger, JobFilter(), None, max_scan):
        scanned += 1
        if job.updated_at < window_start and job.created_at < window_start:
            break
        at = job.finished_at or job.updated_at
        if at < window_start or job.status not in (JobStatus.COMPLETE, JobStatus.FAILED):
            continue
        bucket = hours[min(23, int((at - window_start).total_seconds() // 3600))]
        if job.status is JobStatus.COMPLETE:
            bucket.processed += 1
        else:
            bucket.failed += 1
    activity.complete_scan = scanned < max_scan
    return activity


def recent_matches(
    services: Services, product_id: str, *, limit: int = 12, max_scan: int = 500
) -> list[Prediction]:
    """The latest predictions whose best product is ``product_id`` (among the last ``max_scan``)."""
    found: list[Prediction] = []
    before: int | None = None
    scanned = 0
    while scanned < max_scan and len(found) < limit:
        page = services.ledger.list_predictions(limit=100, before_id=before)
        if not page:
            break
        scanned += len(page)
        found.extend(p for p in page if p.matches and p.matches[0].product_id == product_id)
        before = page[-1].id
    return found[:limit]


def last_sweep(services: Services) -> dict[str, Any] | None:
    """What the last sweep recorded (see :func:`imagematch.operations.sweep`)."""
    return operations.last_sweep(services.settings.data_dir)
