"""An in-process ledger: a real implementation (it passes the contract suite), kept in memory.

Useful for tests and one-off scripts; everything is lost when the process exits.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from imagematch.entities import Entity, EntityMatch, EntityPhoto, EntityRef
from imagematch.ledger.base import Clock, JobAttempt, JobOutcome, SweepReport, numbered_attempts, utcnow
from imagematch.ledger.memory_figures import MemoryFigures
from imagematch.ledger.memory_labels import MemoryLabels
from imagematch.ledger.memory_sessions import MemorySessionRevocations
from imagematch.models import ErrorKind, Job, JobStatus, NewJob, NewPrediction, Prediction

__all__ = ["MemoryLedger"]

_RETRYABLE = (JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.COMPLETE)


class MemoryLedger(MemoryLabels, MemorySessionRevocations, MemoryFigures):
    def __init__(self, *, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._jobs: dict[int, Job] = {}
        self._keys: dict[tuple[str, str], int] = {}  # (kind, key) → job id
        self._predictions: dict[int, Prediction] = {}  # by job id
        self._entities: dict[EntityRef, Entity] = {}
        self._entity_photos: dict[tuple[EntityRef, int], EntityPhoto] = {}
        self._matches: dict[EntityRef, list[EntityMatch]] = {}
        self._attempts: dict[int, list[JobAttempt]] = {}  # by job id
        self._process_metrics: dict[str, tuple[dict[str, float], datetime]] = {}
        self._revoked_sessions: dict[str, datetime] = {}  # session id → when it would expire

    def migrate(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _update(self, job: Job, **changes: object) -> Job:
        updated = job.model_copy(update={**changes, "updated_at": self._clock()})
        self._jobs[job.id] = updated
        if job.status == JobStatus.PROCESSING and updated.status != JobStatus.PROCESSING:
            self._attempts.setdefault(job.id, []).append(
                JobAttempt(
                    job_id=job.id,
                    attempt=job.attempts,
                    worker_id=job.worker_id,
                    outcome=updated.status,
                    error_kind=updated.error_kind,
                    error=updated.last_error,
                    next_attempt_at=updated.next_attempt_at,
                    finished_at=updated.updated_at,
                )
            )
        return updated

    def list_attempts(self, job_id: int) -> list[JobAttempt]:
        with self._lock:
            return numbered_attempts(list(self._attempts.get(job_id, [])))

    def _held(self, job_id: int, worker_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job and job.status == JobStatus.PROCESSING and job.worker_id == worker_id:
            return job
        return None

    def submit(self, job: NewJob) -> tuple[Job, bool]:
        with self._lock:
            key = (job.kind, job.idempotency_key)
            if key in self._keys:
                return self._jobs[self._keys[key]], False
            now = self._clock()
            new = Job(
                id=len(self._jobs) + 1,
                **job.model_dump(),
                status=JobStatus.PENDING,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            self._jobs[new.id] = new
            self._keys[key] = new.id
            return new, True

    def get_job(self, job_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def get_job_by_key(self, idempotency_key: str, *, kind: str) -> Job | None:
        with self._lock:
            job_id = self._keys.get((kind, idempotency_key))
            return self._jobs[job_id] if job_id else None

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Job]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: -j.id)
        return [
            j
            for j in jobs
            if (status is None or j.status == status)
            and (source is None or j.source == source)
            and (before_id is None or j.id < before_id)
        ][:limit]

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[Job]:
        with self._lock:
            now = self._clock()
            due = sorted(
                (
                    j
                    for j in self._jobs.values()
                    if j.status == JobStatus.PENDING and (j.next_attempt_at or now) <= now
                ),
                key=lambda j: (j.next_attempt_at or now, j.id),
            )[:limit]
            return [
                self._update(
                    j,
                    status=JobStatus.PROCESSING,
                    attempts=j.attempts + 1,
                    worker_id=worker_id,
                    locked_until=now + timedelta(seconds=lease_seconds),
                )
                for j in due
            ]

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            now = self._clock()
            if job is None or job.status != JobStatus.PENDING or (job.next_attempt_at or now) > now:
                return None
            return self._update(
                job,
                status=JobStatus.PROCESSING,
                attempts=job.attempts + 1,
                worker_id=worker_id,
                locked_until=now + timedelta(seconds=lease_seconds),
            )

    def claim_jobs(self, job_ids: list[int], worker_id: str, *, lease_seconds: float) -> list[Job]:
        with self._lock:
            claimed = (
                self.claim_job(i, worker_id, lease_seconds=lease_seconds) for i in sorted(set(job_ids))
            )
            return [job for job in claimed if job is not None]

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        with self._lock:
            job = self._held(job_id, worker_id)
            if job:
                self._update(job, locked_until=self._clock() + timedelta(seconds=lease_seconds))
            return job is not None

    def complete(self, job_id: int, worker_id: str, prediction: NewPrediction | None) -> bool:
        with self._lock:
            job = self._held(job_id, worker_id)
            if job is None:
                return False
            now = self._clock()
            if prediction is not None:
                best = prediction.best
                previous = self._predictions.get(job_id)
                self._predictions[job_id] = Prediction(
                    **prediction.model_dump(),
                    id=previous.id if previous else len(self._predictions) + 1,
                    job_id=job_id,
                    best_product_id=best.product_id if best else None,
                    best_score=best.score if best else None,
                    created_at=now,
                )
            self._finish(job, JobStatus.COMPLETE, None, None)
            return True

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        error_kind: ErrorKind | None,
        error: str | None,
        retry_at: datetime | None = None,
    ) -> None:
        self._update(
            job,
            status=status,
            error_kind=error_kind,
            last_error=error,
            next_attempt_at=retry_at,
            locked_until=None,
            finished_at=None if retry_at else self._clock(),
        )

    def fail(
        self, job_id: int, worker_id: str, *, error_kind: ErrorKind, error: str, retry_at: datetime | None
    ) -> bool:
        with self._lock:
            job = self._held(job_id, worker_id)
            if job:
                self._finish(job, JobStatus.FAILED, error_kind, error, retry_at)
            return job is not None

    def skip(self, job_id: int, worker_id: str, *, reason: str) -> bool:
        with self._lock:
            job = self._held(job_id, worker_id)
            if job:
                self._finish(job, JobStatus.SKIPPED, None, reason)
            return job is not None

    def finish_many(self, worker_id: str, outcomes: list[JobOutcome]) -> list[bool]:
        with self._lock:
            return [self._record(worker_id, outcome) for outcome in outcomes]

    def _record(self, worker_id: str, o: JobOutcome) -> bool:
        if o.status == JobStatus.COMPLETE:
            return self.complete(o.job_id, worker_id, o.prediction)
        if o.status == JobStatus.SKIPPED:
            return self.skip(o.job_id, worker_id, reason=o.error or "")
        error_kind = o.error_kind or ErrorKind.PERMANENT
        return self.fail(o.job_id, worker_id, error_kind=error_kind, error=o.error or "", retry_at=o.retry_at)

    def _reset(self, job: Job) -> Job:
        return self._update(
            job,
            status=JobStatus.PENDING,
            attempts=0,
            next_attempt_at=self._clock(),
            locked_until=None,
            worker_id=None,
            finished_at=None,
        )

    def requeue(self, job_id: int) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status not in _RETRYABLE:
                return job
            return self._reset(job)

    def requeue_failed(self, *, source: str | None = None) -> int:
        with self._lock:
            failed = [
                j
                for j in self._jobs.values()
                if j.status == JobStatus.FAILED and (source is None or j.source == source)
            ]
            for job in failed:
                self._reset(job)
            return len(failed)

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        report = SweepReport()
        with self._lock:
            now = self._clock()
            for job in list(self._jobs.values()):
                if job.status == JobStatus.FAILED and job.next_attempt_at and job.next_attempt_at <= now:
                    self._update(job, status=JobStatus.PENDING, worker_id=None)
                    report.retries_due += 1
                elif job.status == JobStatus.PROCESSING and job.locked_until and job.locked_until < now:
                    error = f"lease expired: worker {job.worker_id} stopped responding"
                    if job.attempts >= max_attempts:
                        self._finish(job, JobStatus.FAILED, ErrorKind.TRANSIENT, error)
                        report.gave_up += 1
                    else:
                        self._update(
                            job,
                            status=JobStatus.PENDING,
                            last_error=error,
                            next_attempt_at=now,
                            locked_until=None,
                            worker_id=None,
                        )
                        report.leases_expired += 1
            cutoff = now - timedelta(seconds=pending_grace_seconds)
            report.due_pending = sorted(
                j.id
                for j in self._jobs.values()
                if j.status == JobStatus.PENDING
                and (j.next_attempt_at or now) <= now
                and j.updated_at <= cutoff
            )
        return report

    def count_by_status(self, *, kind: str | None = None) -> dict[JobStatus, int]:
        with self._lock:
            counts = dict.fromkeys(JobStatus, 0)
            for job in self._jobs.values():
                if kind is None or job.kind == kind:
                    counts[job.status] += 1
            return counts

    def get_prediction(self, job_id: int) -> Prediction | None:
        with self._lock:
            return self._predictions.get(job_id)

    def list_predictions(
        self, *, ticket_id: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[Prediction]:
        with self._lock:
            rows = sorted(self._predictions.values(), key=lambda p: -p.id)
        return [
            p
            for p in rows
            if (ticket_id is None or p.references.get("ticket_id") == ticket_id)
            and (before_id is None or p.id < before_id)
        ][:limit]

    def add_entity_photo(self, photo: EntityPhoto) -> None:
        ref = photo.ref
        with self._lock:
            now = self._clock()
            self._entity_photos[(ref, photo.job_id)] = photo.model_copy(update={"created_at": now})
            entity = self._entities.get(ref) or Entity(**ref.model_dump(), created_at=now)
            count = sum(1 for key in self._entity_photos if key[0] == ref)
            self._entities[ref] = entity.model_copy(update={"photo_count": count, "updated_at": now})

    def entity_photos(self, entity: EntityRef | None = None) -> list[EntityPhoto]:
        with self._lock:
            rows = [p for (ref, _), p in self._entity_photos.items() if entity is None or ref == entity]
        return sorted(rows, key=lambda p: (p.job_id, p.entity_type, p.entity_id))

    def get_entity(self, entity: EntityRef) -> Entity | None:
        with self._lock:
            return self._entities.get(entity.ref)

    def list_entities(
        self, *, since: datetime | None = None, after: EntityRef | None = None, limit: int = 500
    ) -> list[Entity]:
        with self._lock:
            rows = sorted(self._entities.values(), key=lambda e: (e.entity_type, e.entity_id))
        return [
            e
            for e in rows
            if (after is None or (e.entity_type, e.entity_id) > (after.entity_type, after.entity_id))
            and (since is None or (e.updated_at is not None and e.updated_at >= since))
        ][:limit]

    def replace_entity_matches(
        self, entity: EntityRef, matches: list[EntityMatch], *, index_version: str
    ) -> Entity | None:
        ref = entity.ref
        with self._lock:
            before = self._entities.get(ref)
            if before is None:
                return None
            now = self._clock()
            stamped = [
                m.model_copy(update={"index_version": index_version, "computed_at": now}) for m in matches
            ]
            self._matches[ref] = sorted(stamped, key=lambda m: m.rank)
            self._entities[ref] = before.model_copy(
                update={
                    "index_version": index_version,
                    "matched_at": now,
                    "top_product_id": stamped[0].product_id if stamped else None,
                    "floor_score": min((m.score for m in stamped), default=None),
                    "match_count": len(stamped),
                }
            )
            return before

    def entity_matches(self, entity: EntityRef) -> list[EntityMatch]:
        with self._lock:
            return list(self._matches.get(entity.ref, []))

    def entities_matching(self, product_id: str) -> list[EntityRef]:
        with self._lock:
            found = [
                ref for ref, rows in self._matches.items() if any(m.product_id == product_id for m in rows)
            ]
        return sorted(found, key=lambda r: (r.entity_type, r.entity_id))

    def advance_entities(self, *, from_version: str, to_version: str, keep: list[EntityRef]) -> int:
        kept = {ref.ref for ref in keep}
        with self._lock:
            moved = [
                r for r, e in self._entities.items() if e.index_version == from_version and r not in kept
            ]
            for ref in moved:
                self._entities[ref] = self._entities[ref].model_copy(update={"index_version": to_version})
            return len(moved)

    def count_stale_entities(self, index_version: str) -> int:
        with self._lock:
            return sum(1 for e in self._entities.values() if e.index_version != index_version)
