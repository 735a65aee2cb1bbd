"""The jobs list's filter: status, source, kind, dates, entity and one search box (``q``).

Filters the ledger cannot apply itself (kind, dates, entity, search) are applied while paging
through its keyset pages, with a bound on how many rows one page may scan: a page can come back
shorter than asked, and its cursor still continues exactly where the scan stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from imagematch.entities import EntityRef
from imagematch.ledger import Ledger
from imagematch.models import Job, JobStatus

__all__ = ["MAX_SCAN", "JobFilter", "find_jobs", "job_entity", "parse_filter", "scan_jobs"]

MAX_SCAN = 2000  # ledger rows one console page may read while filtering


def job_entity(job: Job) -> EntityRef | None:
    """The entity a job's photo belongs to: given at submit time, or its Zendesk ticket."""
    payload = job.payload
    try:
        if payload.get("entity_type") and payload.get("entity_id"):
            return EntityRef(entity_type=payload["entity_type"], entity_id=str(payload["entity_id"]))
        if payload.get("ticket_id") is not None:
            return EntityRef(entity_type="ticket", entity_id=str(payload["ticket_id"]))
    except ValueError:
        return None
    return None


def _searchable(job: Job) -> str:
    """What a free-text search looks in: file name, URL, idempotency key (lower case)."""
    payload = job.payload
    parts = [str(payload.get(k) or "") for k in ("file_name", "image", "url")]
    return " ".join([*parts, job.idempotency_key]).lower()


@dataclass(frozen=True)
class JobFilter:
    status: JobStatus | None = None
    source: str | None = None
    kind: str | None = None
    since: date | None = None  # created on or after this day (UTC)
    until: date | None = None  # created on or before this day (UTC)
    entity: EntityRef | None = None
    q: str = ""  # a job id, an entity (ticket/101 or 101), a file name, a URL or a product id
    product_id: str | None = None  # set when ``q`` names a catalog product

    def _matches_search(self, job: Job, best_product: Callable[[int], str | None]) -> bool:
        needle = self.q.strip().lstrip("#").lower()
        entity = job_entity(job)
        if entity is not None and needle in (str(entity).lower(), entity.entity_id.lower()):
            return True
        if needle.isdigit():  # a number names a job or an entity, never part of a hash
            return int(needle) == job.id
        if needle in _searchable(job):
            return True
        return self.product_id is not None and best_product(job.id) == self.product_id

    def accepts(self, job: Job, best_product: Callable[[int], str | None] = lambda _: None) -> bool:
        day = job.created_at.date()
        return (
            (self.kind is None or job.kind == self.kind)
            and (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
            and (self.entity is None or job_entity(job) == self.entity)
            and (not self.q.strip() or self._matches_search(job, best_product))
        )

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for links that keep it)."""
        pairs = {
            "q": self.q.strip() or None,
            "status": self.status.value if self.status else None,
            "source": self.source,
            "kind": self.kind,
            "entity": str(self.entity) if self.entity else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in pairs.items() if v}


def _date(value: str | None, what: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError as exc:
        raise ValueError(f"“{value}” is not a date for {what} (use YYYY-MM-DD).") from exc


def parse_filter(params: dict[str, str], *, kinds: set[str], product_ids: set[str]) -> JobFilter:
    """The filter from query or form fields; ValueError says which value is wrong and why."""
    status, kind, entity = params.get("status") or None, params.get("kind") or None, params.get("entity")
    if status and status not in set(JobStatus):
        raise ValueError(f"“{status}” is not a job status (one of {', '.join(JobStatus)}).")
    if kind and kind not in kinds:
        raise ValueError(f"“{kind}” is not a job kind (one of {', '.join(sorted(kinds))}).")
    try:
        ref = EntityRef.parse(entity) if entity else None
    except ValueError as exc:
        raise ValueError(f"“{entity}” is not an entity (write it as TYPE/ID, e.g. ticket/101).") from exc
    q = (params.get("q") or "").strip()
    return JobFilter(
        status=JobStatus(status) if status else None,
        source=params.get("source") or None,
        kind=kind,
        since=_date(params.get("since"), "From"),
        until=_date(params.get("until"), "To"),
        entity=ref,
        q=q,
        product_id=q if q in product_ids else None,
    )


def scan_jobs(ledger: Ledger, flt: JobFilter, before_id: int | None, max_scan: int) -> Iterator[Job]:
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


def _best_product(ledger: Ledger) -> Callable[[int], str | None]:
    def best(job_id: int) -> str | None:
        prediction = ledger.get_prediction(job_id)
        return prediction.best_product_id if prediction else None

    return best


def find_jobs(
    ledger: Ledger, flt: JobFilter, *, limit: int, before_id: int | None, max_scan: int = MAX_SCAN
) -> tuple[list[Job], int | None]:
    """Up to ``limit`` jobs matching ``flt`` older than ``before_id``; and the cursor of the next
    page (None at the end)."""
    found: list[Job] = []
    last_id: int | None = None
    scanned = 0
    best = _best_product(ledger)
    for job in scan_jobs(ledger, flt, before_id, max_scan):
        scanned += 1
        last_id = job.id
        if flt.since and job.created_at.date() < flt.since:
            return found, None  # newest first: nothing older can match
        if flt.accepts(job, best):
            found.append(job)
            if len(found) == limit:
                return found, job.id
    return found, (last_id if scanned == max_scan else None)
