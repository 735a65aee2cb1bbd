"""A ledger whose every state change is one of the SQL functions in ``ledger/sql/migrations``.

The Postgres backend (psycopg) and the Supabase backend (PostgREST) differ only in how they call a
function and read a table; both are this class with those two hooks, so they cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from imagematch.entities import Entity, EntityMatch, EntityPhoto, EntityRef
from imagematch.ledger.base import (
    Clock,
    JobAttempt,
    JobFigures,
    JobOutcome,
    SweepReport,
    numbered_attempts,
    utcnow,
)
from imagematch.ledger.function_labels import FunctionLabels
from imagematch.models import ErrorKind, Job, JobStatus, NewJob, NewPrediction, Prediction

__all__ = ["FunctionLedger", "prediction_json"]


def prediction_json(prediction: NewPrediction) -> dict[str, Any]:
    """The ``p_prediction`` argument of ``imagematch_finish``."""
    best = prediction.best
    return {
        **prediction.model_dump(mode="json", exclude={"references"}),
        **prediction.reference_columns(),
        "best_product_id": best.product_id if best else None,
        "best_score": best.score if best else None,
    }


class FunctionLedger(FunctionLabels, ABC):
    def __init__(self, *, clock: Clock = utcnow) -> None:
        self._clock = clock

    @abstractmethod
    def _call(self, fn: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of ``select * from fn(name => value, …)``; a scalar function gives one row whose
        only column is named like the function. ``args`` values may be datetimes and JSON-able
        dicts/lists; each backend converts them for its transport."""

    @abstractmethod
    def _select(
        self, table: str, *, where: dict[str, Any], limit: int | None = None, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """``select *`` with equality filters (``None`` values ignored); with ``limit``, newest
        first and below ``before_id``."""

    def _value(self, fn: str, args: dict[str, Any]) -> Any:
        rows = self._call(fn, {**args, "p_now": self._clock()})
        return rows[0][fn] if rows else None

    def _jobs(self, fn: str, args: dict[str, Any]) -> list[Job]:
        rows = self._call(fn, {**args, "p_now": self._clock()})
        return [Job.model_validate(row) for row in rows]

    def submit(self, job: NewJob) -> tuple[Job, bool]:
        result = self._value(
            "imagematch_submit",
            {
                "p_kind": job.kind,
                "p_source": job.source,
                "p_key": job.idempotency_key,
                "p_payload": job.payload,
                "p_metadata": job.metadata,
                "p_request_id": job.request_id,
            },
        )
        return Job.model_validate(result["job"]), bool(result["created"])

    def get_job(self, job_id: int) -> Job | None:
        rows = self._select("image_jobs", where={"id": job_id})
        return Job.model_validate(rows[0]) if rows else None

    def get_job_by_key(self, idempotency_key: str, *, kind: str) -> Job | None:
        rows = self._select("image_jobs", where={"kind": kind, "idempotency_key": idempotency_key})
        return Job.model_validate(rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Job]:
        where = {"status": status.value if status else None, "source": source}
        rows = self._select("image_jobs", where=where, limit=limit, before_id=before_id)
        return [Job.model_validate(r) for r in rows]

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[Job]:
        args = {"p_worker": worker_id, "p_limit": limit, "p_lease_seconds": lease_seconds}
        return sorted(self._jobs("imagematch_claim", args), key=lambda j: (j.next_attempt_at, j.id))

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> Job | None:
        args = {"p_id": job_id, "p_worker": worker_id, "p_lease_seconds": lease_seconds}
        jobs = self._jobs("imagematch_claim_job", args)
        return jobs[0] if jobs else None

    def claim_jobs(self, job_ids: list[int], worker_id: str, *, lease_seconds: float) -> list[Job]:
        args = {"p_ids": sorted(set(job_ids)), "p_worker": worker_id, "p_lease_seconds": lease_seconds}
        return sorted(self._jobs("imagematch_claim_jobs", args), key=lambda j: j.id)

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        args = {"p_id": job_id, "p_worker": worker_id, "p_lease_seconds": lease_seconds}
        return bool(self._value("imagematch_heartbeat", args))

    def _finish(
        self,
        job_id: int,
        worker_id: str,
        status: JobStatus,
        *,
        error_kind: ErrorKind | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
        prediction: NewPrediction | None = None,
    ) -> bool:
        args = {
            "p_id": job_id,
            "p_worker": worker_id,
            "p_status": status.value,
            "p_error_kind": error_kind.value if error_kind else None,
            "p_error": error,
            "p_retry_at": retry_at,
            "p_prediction": prediction_json(prediction) if prediction else None,
        }
        return bool(self._value("imagematch_finish", args))

    def complete(self, job_id: int, worker_id: str, prediction: NewPrediction | None) -> bool:
        return self._finish(job_id, worker_id, JobStatus.COMPLETE, prediction=prediction)

    def fail(
        self, job_id: int, worker_id: str, *, error_kind: ErrorKind, error: str, retry_at: datetime | None
    ) -> bool:
        return self._finish(
            job_id, worker_id, JobStatus.FAILED, error_kind=error_kind, error=error, retry_at=retry_at
        )

    def skip(self, job_id: int, worker_id: str, *, reason: str) -> bool:
        return self._finish(job_id, worker_id, JobStatus.SKIPPED, error=reason)

    def finish_many(self, worker_id: str, outcomes: list[JobOutcome]) -> list[bool]:
        if not outcomes:
            return []
        items = [
            {
                "id": o.job_id,
                "status": o.status.value,
                "error_kind": o.error_kind.value if o.error_kind else None,
                "error": o.error,
                "retry_at": o.retry_at.isoformat() if o.retry_at else None,
                "prediction": prediction_json(o.prediction) if o.prediction else None,
            }
            for o in outcomes
        ]
        answer = self._value("imagematch_finish_many", {"p_worker": worker_id, "p_items": items})
        done = set(answer["finished"])
        return [o.job_id in done for o in outcomes]

    def requeue(self, job_id: int) -> Job | None:
        jobs = self._jobs("imagematch_requeue", {"p_id": job_id})
        return jobs[0] if jobs else None

    def requeue_failed(self, *, source: str | None = None) -> int:
        return int(self._value("imagematch_requeue_failed", {"p_source": source}))

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        args = {"p_max_attempts": max_attempts, "p_grace_seconds": pending_grace_seconds}
        return SweepReport(**self._value("imagematch_sweep", args))

    def count_by_status(self, *, kind: str | None = None) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        for row in self._call("imagematch_count_by_status", {"p_kind": kind}):
            counts[JobStatus(row["status"])] = int(row["n"])
        return counts

    def job_figures(self) -> JobFigures:
        return JobFigures.model_validate(self._value("imagematch_job_figures", {}))

    def put_process_metrics(self, process_id: str, samples: dict[str, float]) -> None:
        self._value("imagematch_put_process_metrics", {"p_process": process_id, "p_samples": samples})

    def process_metrics_total(self) -> dict[str, float]:
        totals = self._value("imagematch_process_metrics_total", {}) or {}
        return {str(k): float(v) for k, v in totals.items()}

    def retire_process_metrics(self, *, before: datetime) -> int:
        return int(self._value("imagematch_retire_process_metrics", {"p_before": before}) or 0)

    def archive_finished_jobs(self, *, finished_before: datetime, limit: int = 10_000) -> int:
        """Move up to ``limit`` complete or skipped jobs finished before ``finished_before`` to
        ``image_jobs_archive`` (their predictions stay in the log); returns how many moved. Call
        until it returns 0. Postgres/Supabase only: the ledger that grows to millions of jobs."""
        return int(self._value("imagematch_archive_jobs", {"p_before": finished_before, "p_limit": limit}))

    def get_prediction(self, job_id: int) -> Prediction | None:
        rows = self._select("image_prediction_log", where={"job_id": job_id})
        return Prediction.model_validate(rows[0]) if rows else None

    def list_predictions(
        self, *, ticket_id: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[Prediction]:
        rows = self._select(
            "image_prediction_log", where={"ticket_id": ticket_id}, limit=limit, before_id=before_id
        )
        return [Prediction.model_validate(r) for r in rows]

    def add_entity_photo(self, photo: EntityPhoto) -> None:
        args = {f"p_{k}": v for k, v in photo.model_dump(exclude={"created_at"}).items()}
        self._value("imagematch_add_entity_photo", args)

    def entity_photos(self, entity: EntityRef | None = None) -> list[EntityPhoto]:
        where = entity.ref.model_dump() if entity else {}
        rows = [EntityPhoto.model_validate(r) for r in self._select("entity_photos", where=where)]
        return sorted(rows, key=lambda p: (p.job_id, p.entity_type, p.entity_id))

    def get_entity(self, entity: EntityRef) -> Entity | None:
        rows = self._select("entities", where=entity.ref.model_dump())
        return Entity.model_validate(rows[0]) if rows else None

    def list_entities(
        self, *, since: datetime | None = None, after: EntityRef | None = None, limit: int = 500
    ) -> list[Entity]:
        args = {
            "p_after_type": after.entity_type if after else None,
            "p_after_id": after.entity_id if after else None,
            "p_since": since,
            "p_limit": limit,
        }
        return [Entity.model_validate(r) for r in self._call("imagematch_list_entities", args)]

    def replace_entity_matches(
        self, entity: EntityRef, matches: list[EntityMatch], *, index_version: str
    ) -> Entity | None:
        args = {
            "p_entity_type": entity.entity_type,
            "p_entity_id": entity.entity_id,
            "p_index_version": index_version,
            "p_matches": [
                m.model_dump(mode="json", exclude={"index_version", "computed_at"}) for m in matches
            ],
        }
        before = self._value("imagematch_replace_matches", args)
        return Entity.model_validate(before) if before else None

    def entity_matches(self, entity: EntityRef) -> list[EntityMatch]:
        rows = self._select("matches", where=entity.ref.model_dump())
        return sorted((EntityMatch.model_validate(r) for r in rows), key=lambda m: m.rank)

    def entities_matching(self, product_id: str) -> list[EntityRef]:
        rows = self._select("matches", where={"product_id": product_id})
        refs = {EntityRef(entity_type=r["entity_type"], entity_id=r["entity_id"]) for r in rows}
        return sorted(refs, key=lambda r: (r.entity_type, r.entity_id))

    def advance_entities(self, *, from_version: str, to_version: str, keep: list[EntityRef]) -> int:
        args = {
            "p_from_version": from_version,
            "p_to_version": to_version,
            "p_keep": [[ref.entity_type, ref.entity_id] for ref in keep],
        }
        rows = self._call("imagematch_advance_entities", args)
        return int(rows[0]["imagematch_advance_entities"]) if rows else 0

    def count_stale_entities(self, index_version: str) -> int:
        rows = self._call("imagematch_count_stale_entities", {"p_index_version": index_version})
        return int(rows[0]["imagematch_count_stale_entities"]) if rows else 0

    def list_attempts(self, job_id: int) -> list[JobAttempt]:
        rows = self._select("image_job_attempts", where={"job_id": job_id})
        ordered = sorted(rows, key=lambda r: int(r["id"]))
        return numbered_attempts([JobAttempt.model_validate(r) for r in ordered])

    def revoke_session(self, session_id: str, *, expires_at: datetime) -> None:
        self._value("imagematch_revoke_session", {"p_session_id": session_id, "p_expires_at": expires_at})

    def session_revoked(self, session_id: str) -> bool:
        return bool(self._value("imagematch_session_revoked", {"p_session_id": session_id}))
