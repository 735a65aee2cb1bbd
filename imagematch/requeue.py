"""Re-queue ledger jobs whose image has no successful prediction (``imagematch backfill``).

Idempotent: re-queuing a job that is already pending or processing changes nothing, and the
idempotency key means a re-queue never creates a second job for the same image. (Finding Zendesk
tickets that never became jobs is :mod:`imagematch.sources.zendesk.ticket_backfill`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from imagematch.ledger import Ledger
from imagematch.models import ImageJob, JobStatus

__all__ = ["RequeueReport", "RequeueScope", "find_jobs_to_requeue", "requeue_jobs"]


class RequeueScope(StrEnum):
    MISSING = "missing"  # no successful prediction: failed or skipped
    FAILED = "failed"  # failed only
    ALL = "all"  # everything, completed jobs included (reprocess: the new answer replaces the old)


_STATUSES = {
    RequeueScope.MISSING: {JobStatus.FAILED, JobStatus.SKIPPED},
    RequeueScope.FAILED: {JobStatus.FAILED},
    RequeueScope.ALL: {JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.COMPLETE},
}


@dataclass
class RequeueReport:
    matched: int = 0
    requeued: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    job_ids: list[int] = field(default_factory=list)


def find_jobs_to_requeue(
    ledger: Ledger,
    *,
    scope: RequeueScope,
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


def requeue_jobs(
    ledger: Ledger,
    jobs: Iterator[ImageJob],
    *,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
) -> RequeueReport:
    """Re-queue ``jobs`` (or only count them with ``dry_run``)."""
    report = RequeueReport()
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
