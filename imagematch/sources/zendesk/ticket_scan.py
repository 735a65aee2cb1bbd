"""``imagematch zendesk scan``: find tickets whose image attachments have no prediction.

(Re-queuing jobs the ledger already holds is :func:`imagematch.operations.requeue`.)

Walks the Incremental Ticket Export (cursor API) from ``since``, lists each ticket's comments, and
for every matchable attachment looks up its ``zendesk_image`` job in the ledger: none yet means the
ticket is queued for a scan (a ``zendesk_ticket`` job), a failed one is re-queued. Idempotent: the
ticket job's key names the attachments it is for, so running it twice queues nothing new.

This is a command someone runs and watches, not a job, so it waits out Zendesk's rate limits
(``Retry-After``; the export allows only 10 requests a minute) instead of failing half-way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from imagematch.errors import TransientError
from imagematch.ledger import Ledger
from imagematch.models import JobStatus
from imagematch.sources.zendesk.client import ZendeskClient
from imagematch.sources.zendesk.jobs import image_job_for, ticket_job

__all__ = ["TicketScanReport", "scan_tickets"]

T = TypeVar("T")

MAX_WAITS = 20  # consecutive transient failures of one request before giving up
WAIT_CAP_SECONDS = 120.0


@dataclass
class TicketScanReport:
    dry_run: bool
    tickets_scanned: int = 0
    tickets_queued: int = 0  # with dry_run: would be queued
    attachments_missing: int = 0  # matchable attachments with no job yet
    jobs_requeued: int = 0  # failed attachment jobs queued again (with dry_run: would be)
    job_ids: list[int] = field(default_factory=list)  # jobs created or re-queued: dispatch these

    def summary(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "tickets_scanned": self.tickets_scanned,
            "tickets_queued": self.tickets_queued,
            "attachments_missing": self.attachments_missing,
            "jobs_requeued": self.jobs_requeued,
        }


def _patiently(call: Callable[[], T], sleep: Callable[[float], None]) -> T:
    for attempt in range(MAX_WAITS):
        try:
            return call()
        except TransientError as exc:
            if attempt == MAX_WAITS - 1:
                raise
            sleep(min(WAIT_CAP_SECONDS, exc.retry_after or 2.0 * 2**attempt))
    raise AssertionError("unreachable")


def scan_tickets(
    client: ZendeskClient,
    ledger: Ledger,
    *,
    since: datetime,
    max_bytes: int,
    dry_run: bool = False,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
) -> TicketScanReport:
    """Queue a scan of every ticket updated since ``since`` that has a matchable attachment with no
    job, and re-queue failed attachment jobs (only count them with ``dry_run``). ``limit`` caps the
    tickets scanned. Raises PermanentError (e.g. bad credentials) and TransientError when Zendesk
    stays unavailable."""
    report = TicketScanReport(dry_run=dry_run)
    cursor: str | None = None
    while limit is None or report.tickets_scanned < limit:
        page = partial(client.incremental_tickets, start_time=None if cursor else since, cursor=cursor)
        tickets, cursor = _patiently(page, sleep)
        for ticket in tickets:
            if limit is not None and report.tickets_scanned >= limit:
                break
            if ticket.get("id") is None or ticket.get("status") == "deleted":
                continue
            _scan_ticket(client, ledger, str(ticket["id"]), max_bytes, report, sleep)
            if progress:
                progress(1)
        if cursor is None:
            break
    return report


def _scan_ticket(
    client: ZendeskClient,
    ledger: Ledger,
    ticket_id: str,
    max_bytes: int,
    report: TicketScanReport,
    sleep: Callable[[float], None],
) -> None:
    report.tickets_scanned += 1
    comments = _patiently(lambda: list(client.iter_comments(ticket_id)), sleep)
    missing: list[str] = []
    for comment in comments:
        for attachment in comment.get("attachments") or []:
            wanted = image_job_for(ticket_id, comment, attachment, max_bytes=max_bytes)
            if wanted is None or wanted.payload.get("skip_reason"):
                continue  # not a matchable image: nothing to predict
            existing = ledger.get_job_by_key(wanted.idempotency_key, kind=wanted.kind)
            if existing is None:
                missing.append(str(wanted.payload["attachment_id"]))
            elif existing.status == JobStatus.FAILED:
                report.jobs_requeued += 1
                if not report.dry_run:
                    requeued = ledger.requeue(existing.id)
                    if requeued is not None:
                        report.job_ids.append(requeued.id)
    if not missing:
        return
    report.attachments_missing += len(missing)
    if report.dry_run:
        report.tickets_queued += 1
        return
    run = hashlib.sha256(",".join(sorted(missing)).encode()).hexdigest()[:16]
    # The key and metadata keep the command's old name: jobs already queued keep their meaning.
    job, created = ledger.submit(ticket_job(ticket_id, f"backfill:{run}", metadata={"backfill": True}))
    if created:  # else an earlier run queued this very scan and it has not run yet
        report.tickets_queued += 1
        report.job_ids.append(job.id)
