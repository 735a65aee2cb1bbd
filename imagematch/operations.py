"""The operator's operations, each written once: the CLI, ``serve``'s loop and Modal only call them.

* :func:`open_services` — the services for one operation, closed afterwards;
* :func:`sweep` — re-queue due retries and expired leases, dispatch stale pending jobs, record it;
* :func:`requeue` — re-queue jobs with no successful answer (``imagematch requeue``);
* :func:`rebuild` — build the catalog into a new served snapshot (``imagematch index build``);
* :func:`switch_model` — build with another model, check it, promote it (``index switch-model``).

Each returns a typed summary with one set of names, whichever front door asked. The model and
the index builder are imported by the operations that use them, not by this module, so
``imagematch sweep`` starts without loading torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagematch.config import Settings
from imagematch.dispatch import Dispatch
from imagematch.ledger import Ledger
from imagematch.models import Job, JobStatus
from imagematch.retention import purge_stored_photos_if_due

if TYPE_CHECKING:
    from imagematch.app import Services
    from index_builder.build import BuildReport
    from index_builder.fanout import EmbeddingExecutor
    from index_builder.model_switch import SwitchReport

__all__ = [
    "RequeueScope",
    "RequeueSummary",
    "SweepSummary",
    "find_jobs_to_requeue",
    "last_sweep",
    "open_services",
    "rebuild",
    "requeue",
    "sweep",
    "switch_model",
]

log = logging.getLogger(__name__)

SWEEP_RECORD = "sweep.json"  # in the data dir: the console's health page shows the last sweep


@contextmanager
def open_services(settings: Settings, **options: Any) -> Iterator[Services]:
    """:func:`build_services` for one operation, closed when the block ends (even on error)."""
    from imagematch.app import build_services

    services = build_services(settings, **options)
    try:
        yield services
    finally:
        services.close()


# ## Sweep


@dataclass(frozen=True)
class SweepSummary:
    """What one sweep did. ``stale_pending``: pending jobs older than the grace period, handed
    to the dispatch (their first dispatch was lost)."""

    at: datetime
    retries_due: int
    leases_expired: int
    gave_up: int
    stale_pending: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}

    def describe(self) -> str:
        counts = {k: v for k, v in self.as_dict().items() if k != "at"}
        return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())


def sweep(services: Services, dispatch: Dispatch | None = None, *, purge_due: bool = False) -> SweepSummary:
    """One sweep of the ledger; the stale pending jobs go to ``dispatch`` (default: the
    services' own dispatchers). Records the summary for the console (a failure to write is
    logged, never raised). Idempotent and safe to run concurrently. ``purge_due``: also purge
    thumbnails and uploaded originals past retention when the last purge is an hour old (a
    process that holds the data dir: ``serve``, ``imagematch sweep``)."""
    report = services.ledger.sweep(
        max_attempts=services.policy.max_attempts,
        pending_grace_seconds=services.settings.pending_grace_seconds,
    )
    summary = SweepSummary(
        at=services.clock(),
        retries_due=report.retries_due,
        leases_expired=report.leases_expired,
        gave_up=report.gave_up,
        stale_pending=len(report.due_pending),
    )
    _record_sweep(services.settings.data_dir, summary)
    if report.due_pending:
        (dispatch or services.dispatch)(report.due_pending)
    if purge_due:
        purge_stored_photos_if_due(services)
    return summary


def _record_sweep(data_dir: Path, summary: SweepSummary) -> None:
    try:
        (data_dir / SWEEP_RECORD).write_text(json.dumps(summary.as_dict()))
    except OSError as exc:
        log.warning("could not record the sweep: %s", exc)


def last_sweep(data_dir: Path) -> dict[str, Any] | None:
    """What the last :func:`sweep` recorded in ``data_dir``, or ``None``."""
    try:
        data: dict[str, Any] = json.loads((data_dir / SWEEP_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data


# ## Requeue


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
class RequeueSummary:
    """What :func:`requeue` found (``matched``, by status) and did (``requeued``, ``dispatched``)."""

    dry_run: bool
    matched: int = 0
    requeued: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    job_ids: list[int] = field(default_factory=list)

    @property
    def dispatched(self) -> int:
        return len(self.job_ids)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "matched": self.matched,
            "by_status": dict(self.by_status),
            "requeued": self.requeued,
            "dispatched": self.dispatched,
        }

    def describe(self) -> str:
        found = ", ".join(f"{n} {status}" for status, n in self.by_status.items()) or "no jobs"
        if self.dry_run:
            return f"dry run: found {found}; would re-queue them and dispatch them"
        return f"found {found}; re-queued {self.requeued}, dispatched {self.dispatched}"


def find_jobs_to_requeue(
    ledger: Ledger,
    *,
    scope: RequeueScope,
    source: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    page_size: int = 500,
) -> Iterator[Job]:
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


def requeue(
    ledger: Ledger,
    dispatch: Dispatch,
    *,
    scope: RequeueScope | str = RequeueScope.MISSING,
    source: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RequeueSummary:
    """Re-queue the jobs in ``scope`` (or only count them with ``dry_run``), then dispatch them
    instead of waiting for the sweep. ``since``: a date (YYYY-MM-DD, UTC when naive). Idempotent:
    a job already pending is left as it is. Raises ValueError for a bad scope or date."""
    jobs = find_jobs_to_requeue(
        ledger, scope=RequeueScope(scope), source=source or None, since=_utc(since), limit=limit or None
    )
    summary = RequeueSummary(dry_run=dry_run)
    for job in jobs:
        summary.matched += 1
        summary.by_status[job.status] = summary.by_status.get(job.status, 0) + 1
        if not dry_run:
            requeued = ledger.requeue(job.id)
            if requeued and requeued.status == JobStatus.PENDING:
                summary.requeued += 1
                summary.job_ids.append(job.id)
        if progress:
            progress(1)
    if summary.job_ids:
        dispatch(summary.job_ids)
    return summary


def _utc(since: datetime | str | None) -> datetime | None:
    at = datetime.fromisoformat(since) if isinstance(since, str) and since else since or None
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at if isinstance(at, datetime) else None


# ## Index builds


def rebuild(
    services: Services,
    catalog: str,
    *,
    executor: EmbeddingExecutor | None = None,
    progress: Callable[[int], None] | None = None,
    on_catalog: Callable[[int], None] | None = None,
) -> BuildReport:
    """Build ``catalog`` with the services' model into a new served snapshot. Raises
    PermanentError if the catalog cannot be read and ChunksFailedError if chunks of the
    embedding failed outright: then nothing is published and CURRENT stays where it was."""
    from index_builder.build import rebuild_catalog_index

    _, report = rebuild_catalog_index(
        services, catalog, executor=executor, progress=progress, on_catalog=on_catalog
    )
    _clear_shards(executor)
    return report


def switch_model(
    new: Services,
    catalog: str,
    *,
    executor: EmbeddingExecutor | None = None,
    queries: Path | None = None,
    floor: float = 0.9,
) -> SwitchReport:
    """Build ``catalog`` with ``new``'s model beside the served snapshot, check it, and serve it
    only if the check passes (see :mod:`index_builder.model_switch`). Raises as :func:`rebuild`."""
    from index_builder.model_switch import switch_model as build_check_promote

    report = build_check_promote(new, catalog, executor=executor, queries=queries, floor=floor)
    _clear_shards(executor)
    return report


def _clear_shards(executor: EmbeddingExecutor | None) -> None:
    from index_builder.fanout import ShardedExecutor

    if isinstance(executor, ShardedExecutor):  # folded into the cache and the snapshot
        executor.shards.clear()
