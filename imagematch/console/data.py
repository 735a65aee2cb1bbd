"""What the console pages show, read from the ledger, the served index and the thumbnail store.

Filters the ledger cannot apply itself (kind, date range) are applied while paging through its
keyset pages, with a bound on how many rows one page may scan: a page can come back shorter than
asked, and its cursor still continues exactly where the scan stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from imagematch import operations
from imagematch.app import Services
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.fetch import read_uri
from imagematch.index import IndexedImage, ProductIndex
from imagematch.ledger import Ledger
from imagematch.models import ImageJob, JobStatus, Match, Prediction

__all__ = [
    "JobFilter",
    "JobRow",
    "ReferenceImage",
    "find_jobs",
    "hourly_activity",
    "last_sweep",
    "recent_matches",
    "reference_image",
    "service_stats",
    "web_link",
]

MAX_SCAN = 2000  # ledger rows one console page may read while filtering


def web_link(value: object) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None: a catalog's ``metadata.url`` is
    only a link when it cannot run script (``javascript:``, ``data:``…) or point off-scheme.
    (``urlsplit`` drops the tabs and newlines a browser would, before the scheme is read.)"""
    text = str(value or "").strip()
    parts = urlsplit(text)
    return text if parts.scheme in ("http", "https") and parts.netloc else None


@dataclass(frozen=True)
class JobFilter:
    status: JobStatus | None = None
    source: str | None = None
    kind: str | None = None
    since: date | None = None  # created on or after this day (UTC)
    until: date | None = None  # created on or before this day (UTC)

    def accepts(self, job: ImageJob) -> bool:
        day = job.created_at.date()
        return (
            (self.kind is None or job.kind == self.kind)
            and (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
        )

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for links that keep it)."""
        pairs = {
            "status": self.status.value if self.status else None,
            "source": self.source,
            "kind": self.kind,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in pairs.items() if v}


def _scan(ledger: Ledger, flt: JobFilter, before_id: int | None, max_scan: int) -> Iterator[ImageJob]:
    """Jobs of the ledger's status/source filter, newest first, at most ``max_scan`` of them."""
    seen = 0
    while seen < max_scan:
        page = ledger.list_jobs(
            status=flt.status, source=flt.source, limit=min(200, max_scan - seen), before_id=before_id
        )
        if not page:
            return
        for job in page:
            seen += 1
            yield job
        before_id = page[-1].id


def find_jobs(
    ledger: Ledger, flt: JobFilter, *, limit: int, before_id: int | None, max_scan: int = MAX_SCAN
) -> tuple[list[ImageJob], int | None]:
    """Up to ``limit`` jobs matching ``flt`` older than ``before_id``; and the cursor of the next
    page (None at the end)."""
    found: list[ImageJob] = []
    last_id: int | None = None
    scanned = 0
    for job in _scan(ledger, flt, before_id, max_scan):
        scanned += 1
        last_id = job.id
        if flt.since and job.created_at.date() < flt.since:
            return found, None  # newest first: nothing older can match
        if flt.accepts(job):
            found.append(job)
            if len(found) == limit:
                return found, job.id
    return found, (last_id if scanned == max_scan else None)


@dataclass
class JobRow:
    """One line of the jobs table."""

    job: ImageJob
    prediction: Prediction | None
    photo: str | None  # thumbnail digest
    ticket_url: str | None

    @property
    def best(self) -> Match | None:
        return self.prediction.matches[0] if self.prediction and self.prediction.matches else None

    @property
    def in_flight(self) -> bool:
        return self.job.status in (JobStatus.PENDING, JobStatus.PROCESSING)


def ticket_url(services: Services, job: ImageJob) -> str | None:
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


def job_row(services: Services, job: ImageJob) -> JobRow:
    prediction = services.ledger.get_prediction(job.id) if job.status is JobStatus.COMPLETE else None
    return JobRow(job, prediction, services.thumbnails.job_photo(job.id), ticket_url(services, job))


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
    for job in _scan(ledger, JobFilter(), None, max_scan):
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
