"""The :class:`Ledger` protocol: the durable record of every job and every prediction.

Every backend (memory, SQLite, Postgres, Supabase) passes the same contract tests
(``tests/integration/test_ledger_contract.py``). State machine::

    pending ──claim──▶ processing ──complete──▶ complete
       ▲                   │ ├──skip──▶ skipped   (subject vanished: a clean outcome)
       │                   │ └──fail──▶ failed    (permanent, or transient with next_attempt_at)
       └──── sweep ◀───────┴── lease expired / failed retry due / manual retry
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel

from imagematch.entities import Entity, EntityMatch, EntityPhoto, EntityRef
from imagematch.labels import LabelStore
from imagematch.models import ErrorKind, Job, JobStatus, NewJob, NewPrediction, Prediction

__all__ = [
    "Clock",
    "JobAttempt",
    "JobFigures",
    "JobOutcome",
    "Ledger",
    "OutcomeCount",
    "SweepReport",
    "utcnow",
]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SweepReport:
    """What one sweep did. ``due_pending`` are jobs waiting longer than the grace period."""

    retries_due: int = 0
    leases_expired: int = 0
    gave_up: int = 0
    due_pending: list[int] = field(default_factory=list)


class JobAttempt(BaseModel):
    """How one attempt at a job ended: recorded whenever a job leaves ``processing`` (completed,
    failed, skipped, or its lease expired and the sweep took it back)."""

    job_id: int
    attempt: int
    worker_id: str | None = None
    outcome: JobStatus
    error_kind: ErrorKind | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime


class OutcomeCount(BaseModel):
    """How many job attempts of ``kind`` from ``source`` ended in ``outcome`` (with ``error_kind``
    for failures); only grows (finished jobs may be archived, their counts stay)."""

    kind: str
    source: str
    outcome: JobStatus
    error_kind: ErrorKind | None = None
    count: int


class JobFigures(BaseModel):
    """What ``/metrics`` reads from the ledger in one call."""

    outcomes: list[OutcomeCount]
    oldest_pending_since: datetime | None = None  # when the longest-waiting pending job became so


@dataclass(frozen=True)
class JobOutcome:
    """How a worker's attempt at one job ended, recorded by :meth:`Ledger.finish_many`:
    ``complete`` with its prediction, ``failed`` with its error (and ``retry_at`` for a retry),
    or ``skipped`` with its reason in ``error``."""

    job_id: int
    status: JobStatus
    prediction: NewPrediction | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    retry_at: datetime | None = None


def numbered_attempts(attempts: list[JobAttempt]) -> list[JobAttempt]:
    """``attempts`` (oldest first) numbered 1, 2, 3…: unique and increasing over the job's whole
    history. The stored number is the job's retry-budget counter, which a manual retry resets, so a
    retried job would otherwise show two attempts numbered 1."""
    return [a.model_copy(update={"attempt": n}) for n, a in enumerate(attempts, start=1)]


class Ledger(LabelStore, Protocol):
    """Jobs, predictions and labels (:class:`~imagematch.labels.LabelStore`). All methods are
    safe to call from several threads and processes."""

    def migrate(self) -> None:
        """Create or upgrade the schema (idempotent)."""
        ...

    def submit(self, job: NewJob) -> tuple[Job, bool]:
        """Persist ``job`` as pending; returns ``(job, created)``. An idempotency key already used
        by a job of the same kind returns that job unchanged with ``created=False``; keys are
        scoped by kind, so a caller's key never shadows another kind's job."""
        ...

    def get_job(self, job_id: int) -> Job | None: ...

    def get_job_by_key(self, idempotency_key: str, *, kind: str) -> Job | None:
        """The job of ``kind`` with this idempotency key, if any."""
        ...

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Job]:
        """Newest first; pass the last id seen as ``before_id`` for the next page."""
        ...

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[Job]:
        """Atomically move up to ``limit`` due pending jobs to processing for ``worker_id``,
        incrementing ``attempts`` and setting ``locked_until``. No job is handed to two workers."""
        ...

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> Job | None:
        """Claim one specific job if it is pending and due (a dispatched job: e.g. a Modal spawn);
        ``None`` if another worker has it, it is done, or it is not due yet."""
        ...

    def claim_jobs(self, job_ids: list[int], worker_id: str, *, lease_seconds: float) -> list[Job]:
        """:meth:`claim_job` for each of ``job_ids`` (a batch of dispatched jobs), in one round
        trip; returns those claimed, by id. The others are left alone."""
        ...

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        """Extend the lease; ``False`` if the worker no longer holds the job."""
        ...

    def complete(self, job_id: int, worker_id: str, prediction: NewPrediction | None) -> bool:
        """Record the prediction and mark the job complete, atomically. One prediction per job:
        a job reprocessed on purpose (manual retry, ``requeue --scope all``) replaces its answer.
        ``False`` if the worker lost the job (lease expired and someone else took it)."""
        ...

    def fail(
        self,
        job_id: int,
        worker_id: str,
        *,
        error_kind: ErrorKind,
        error: str,
        retry_at: datetime | None,
    ) -> bool:
        """Mark failed with the reason; ``retry_at`` set means the sweep re-queues it then."""
        ...

    def skip(self, job_id: int, worker_id: str, *, reason: str) -> bool:
        """Mark skipped: the job's subject vanished, nothing to do."""
        ...

    def finish_many(self, worker_id: str, outcomes: list[JobOutcome]) -> list[bool]:
        """Record each outcome as :meth:`complete`, :meth:`fail` or :meth:`skip` would, in one
        round trip; each is independent of the others (one whose job ``worker_id`` no longer
        holds is not recorded and gives ``False``). Answers in the order of ``outcomes``."""
        ...

    def requeue(self, job_id: int) -> Job | None:
        """Manual retry: a failed, skipped or complete job goes back to pending with attempts reset.
        A pending or processing job is returned unchanged. ``None`` if unknown."""
        ...

    def requeue_failed(self, *, source: str | None = None) -> int:
        """Manual retry of every failed job (optionally of one source); returns how many."""
        ...

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        """Re-queue failed jobs whose retry time passed and processing jobs whose lease expired
        (failing those out of attempts); list pending jobs older than the grace period."""
        ...

    def count_by_status(self, *, kind: str | None = None) -> dict[JobStatus, int]:
        """How many jobs are in each status (every status present, zero if none); with ``kind``,
        only jobs of that kind."""
        ...

    def job_figures(self) -> JobFigures:
        """Counts of ended attempts by kind, source and outcome, and the oldest pending job's
        wait (for ``/metrics``; one cheap read: the counts are kept as jobs finish)."""
        ...

    def put_process_metrics(self, process_id: str, samples: dict[str, float]) -> None:
        """Store ``process_id``'s metric samples (sample key -> value), replacing its last ones."""
        ...

    def process_metrics_total(self) -> dict[str, float]:
        """Every process's samples summed by key (``/metrics`` on Modal)."""
        ...

    def retire_process_metrics(self, *, before: datetime) -> int:
        """Fold the samples of processes silent since ``before`` into one ``retired`` row (sums
        unchanged, fewer rows); returns how many rows were folded. Safe to run concurrently."""
        ...

    def get_prediction(self, job_id: int) -> Prediction | None: ...

    def list_attempts(self, job_id: int) -> list[JobAttempt]:
        """Every ended attempt at ``job_id``, oldest first, numbered 1, 2, 3… over the job's whole
        history, manual retries included (empty for an unknown job)."""
        ...

    def list_predictions(
        self, *, ticket_id: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[Prediction]: ...

    # Entities (imagematch.entities): the photos of a ticket/listing and its matches table.

    def add_entity_photo(self, photo: EntityPhoto) -> None:
        """Record that ``photo`` belongs to its entity (creating the entity); idempotent per entity
        and job: a job re-run replaces its row."""
        ...

    def entity_photos(self, entity: EntityRef | None = None) -> list[EntityPhoto]:
        """The entity's photos (every entity's with ``None``), oldest job first."""
        ...

    def get_entity(self, entity: EntityRef) -> Entity | None: ...

    def list_entities(
        self, *, since: datetime | None = None, after: EntityRef | None = None, limit: int = 500
    ) -> list[Entity]:
        """Entities ordered by type then id, those after ``after`` (paging); with ``since``, only
        those that got a photo at or after it."""
        ...

    def replace_entity_matches(
        self, entity: EntityRef, matches: list[EntityMatch], *, index_version: str
    ) -> Entity | None:
        """Replace the entity's rows of the matches table in one transaction, stamped with
        ``index_version`` and now; returns the entity as it stood before (``None``: unknown
        entity, nothing written)."""
        ...

    def entity_matches(self, entity: EntityRef) -> list[EntityMatch]:
        """The entity's matches table, by rank."""
        ...

    def entities_matching(self, product_id: str) -> list[EntityRef]:
        """Entities whose matches list ``product_id``."""
        ...

    def advance_entities(self, *, from_version: str, to_version: str, keep: list[EntityRef]) -> int:
        """Restamp entities whose matches were computed at ``from_version`` as computed at
        ``to_version`` (a catalog change that cannot alter them), except those in ``keep`` (they
        are being re-matched); returns how many."""
        ...

    def count_stale_entities(self, index_version: str) -> int:
        """Entities whose matches were not computed against ``index_version`` (or never)."""
        ...

    def revoke_session(self, session_id: str, *, expires_at: datetime) -> None:
        """End a console session (logout) for every instance, kept until ``expires_at`` (when the
        session would have expired anyway); revocations already past it are dropped."""
        ...

    def session_revoked(self, session_id: str) -> bool:
        """Whether the console session ``session_id`` was revoked (and is not yet past expiry)."""
        ...

    def close(self) -> None: ...
