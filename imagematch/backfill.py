"""Backfill: find jobs whose image has no successful prediction and queue them again.

Idempotent: re-queuing a job that is already pending or processing changes nothing, and the
idempotency key means a backfill never creates a second job for the same image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from imagematch.ledger import Ledger
from imagematch.models import ImageJob, JobStatus

__all__ = ["BackfillReport", "BackfillScope", "find_backfill_jobs", "run_backfill"]


class BackfillScope(StrEnum):
    MISSING = "missing"  # no successful prediction: failed or skipped
    FAILED = "failed"  # failed only
    ALL = "all"  # everything, completed jobs included (reprocess: the new answer replaces the old)


_STATUSES = {
    BackfillScope.MISSING: {JobStatus.FAILED, JobStatus.SKIPPED},
    BackfillScope.FAILED: {JobStatus.FAILED},
    BackfillScope.ALL: {JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.COMPLETE},
}


@dataclass
class BackfillReport:
    matched: int = 0
    requeued: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    job_ids: list[int] = field(default_factory=list)


def find_backfill_jobs(
    ledger: Ledger,
    *,
    scope: BackfillScope,
    source: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    page_size: int = 500,
) -> Iterator[ImageJob]:
    """Jobs in ``scope``, newest first, created at or after ``since``."""
    wanted, found, cursor = _STATUSES[scope], 0, None
    while True:
        page = ledger.list_jobs(source=source, limit=page_size, before_id=cursor)
        for job in page:
            if since is not None and job.created_at < since:
                return
            if job.status in wanted:
                yield job
                found += 1
                if limit is not None and found >= limit:
                    return
        if len(page) < page_size:
            return
        cursor = page[-1].id


def run_backfill(
    ledger: Ledger,
    jobs: Iterator[ImageJob],
    *,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Re-queue ``jobs`` (or only count them with ``dry_run``)."""
    report = BackfillReport()
    for job in jobs:
        report.matched += 1
        report.by_status[job.status] = report.by_status.get(job.status, 0) + 1
        if not dry_run:
            requeued = ledger.requeue(job.id)
            if requeued and requeued.status == JobStatus.PENDING:
                report.requeued += 1
                report.job_ids.append(job.id)
        if progress:
            progress(1)
    return report
