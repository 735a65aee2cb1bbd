"""Scheduled and operator-run passes over the ledger, as the CLI and Modal's schedules call them:
run the pass, dispatch the jobs it made due, and summarise what happened.

* :func:`sweep_and_dispatch` — re-queue due retries and expired leases; dispatch pending jobs that
  waited past the grace period (a dispatch that was lost).
* :func:`requeue_and_dispatch` — re-queue jobs with no successful answer (``imagematch backfill``).
* :func:`route_by_model_need` — which of a list of jobs need the model (GPU) and which do not.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagematch.config import Settings
from imagematch.job_kinds import JobKinds
from imagematch.ledger import Ledger, SweepReport, utcnow
from imagematch.requeue import RequeueScope, find_jobs_to_requeue, requeue_jobs
from imagematch.worker import Dispatch

__all__ = [
    "describe_requeue",
    "record_sweep",
    "requeue_and_dispatch",
    "route_by_model_need",
    "sweep_and_dispatch",
]


def record_sweep(data_dir: Path, report: SweepReport, at: datetime) -> None:
    """Note when the last sweep ran and what it did (``sweep.json`` in the data dir, shown on the
    console's health page); a failure to write is logged, never raised."""
    body = {
        "at": at.isoformat(),
        "retries_due": report.retries_due,
        "leases_expired": report.leases_expired,
        "gave_up": report.gave_up,
        "due_pending": len(report.due_pending),
    }
    try:
        (data_dir / "sweep.json").write_text(json.dumps(body))
    except OSError as exc:
        logging.getLogger(__name__).warning("could not record the sweep: %s", exc)


def sweep_and_dispatch(ledger: Ledger, settings: Settings, dispatch: Dispatch) -> dict[str, int]:
    """One sweep (as ``imagematch sweep``), then dispatch the pending jobs it found stale."""
    report = ledger.sweep(
        max_attempts=settings.max_attempts, pending_grace_seconds=settings.pending_grace_seconds
    )
    record_sweep(settings.data_dir, report, utcnow())
    if report.due_pending:
        dispatch(report.due_pending)
    return {
        "retries_due": report.retries_due,
        "leases_expired": report.leases_expired,
        "gave_up": report.gave_up,
        "dispatched": len(report.due_pending),
    }


def requeue_and_dispatch(
    ledger: Ledger,
    dispatch: Dispatch,
    *,
    scope: str = "missing",
    source: str = "",
    since: str = "",
    limit: int = 0,
    dry_run: bool = False,
) -> dict[str, Any]:
    """``imagematch backfill`` (same options; ``since`` as YYYY-MM-DD, UTC), then dispatch the
    re-queued jobs instead of waiting for the sweep. Raises ValueError for a bad scope or date."""
    since_at = datetime.fromisoformat(since) if since else None
    if since_at is not None and since_at.tzinfo is None:
        since_at = since_at.replace(tzinfo=UTC)
    jobs = find_jobs_to_requeue(
        ledger, scope=RequeueScope(scope), source=source or None, since=since_at, limit=limit or None
    )
    report = requeue_jobs(ledger, jobs, dry_run=dry_run)
    if report.job_ids:
        dispatch(report.job_ids)
    return {
        "dry_run": dry_run,
        "matched": report.matched,
        "by_status": {str(status): n for status, n in report.by_status.items()},
        "requeued": report.requeued,
        "dispatched": len(report.job_ids),
    }


def describe_requeue(summary: dict[str, Any]) -> str:
    """One line for a person: what :func:`requeue_and_dispatch` found and did."""
    found = ", ".join(f"{n} {status}" for status, n in summary["by_status"].items()) or "no jobs"
    if summary["dry_run"]:
        return f"dry run: found {found}; would re-queue them and dispatch them"
    return f"found {found}; re-queued {summary['requeued']}, dispatched {summary['dispatched']}"


def route_by_model_need(ledger: Ledger, kinds: JobKinds, job_ids: list[int]) -> tuple[list[int], list[int]]:
    """Split ``job_ids`` into (need the model, need no model) by their kind. Unknown jobs and
    kinds go with the model, whose workers record what happened to them."""
    with_model: list[int] = []
    without: list[int] = []
    for job_id in job_ids:
        job = ledger.get_job(job_id)
        spec = kinds.get(job.kind) if job else None
        (without if spec is not None and not spec.needs_embedder else with_model).append(job_id)
    return with_model, without
