"""The Supabase ledger (supabase-py over PostgREST). Tables are read through PostgREST; every state
transition is an RPC to the SQL functions in ``supabase/migrations``, the same ones the Postgres
backend calls, so semantics are identical. Use the service-role key: the tables have RLS enabled
with no policies, so no other role can touch them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from postgrest.exceptions import APIError
from supabase import Client, create_client

from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, SweepReport, utcnow
from imagematch.ledger.postgres import prediction_json
from imagematch.models import ErrorKind, ImageJob, JobStatus, NewJob, NewPrediction, Prediction

__all__ = ["SupabaseLedger"]


class SupabaseLedger:
    def __init__(
        self, url: str, service_key: str, *, clock: Clock = utcnow, client: Client | None = None
    ) -> None:
        self._client = client or create_client(url, service_key)
        self._clock = clock

    def _now(self) -> str:
        return self._clock().isoformat()

    def _rpc(self, fn: str, params: dict[str, Any]) -> Any:
        try:
            return self._client.rpc(fn, params).execute().data
        except (httpx.HTTPError, APIError) as exc:
            raise TransientError(f"Supabase RPC {fn} failed: {exc}") from exc

    def _select(self, table: str, **filters: Any) -> Any:
        """``select *`` with ``eq`` filters; ``before_id``/``limit`` page newest first."""
        before_id, limit = filters.pop("before_id", None), filters.pop("limit", None)
        query = self._client.table(table).select("*")
        for column, value in filters.items():
            if value is not None:
                query = query.eq(column, value)
        if before_id is not None:
            query = query.lt("id", before_id)
        if limit is not None:
            query = query.order("id", desc=True).limit(limit)
        try:
            return query.execute().data
        except (httpx.HTTPError, APIError) as exc:
            raise TransientError(f"Supabase read of {table} failed: {exc}") from exc

    def migrate(self) -> None:
        """Supabase schemas are applied with the Supabase CLI (`supabase db push`), not from here."""

    def close(self) -> None:
        pass

    def submit(self, job: NewJob) -> tuple[ImageJob, bool]:
        result = self._rpc(
            "imagematch_submit",
            {
                "p_kind": job.kind,
                "p_source": job.source,
                "p_key": job.idempotency_key,
                "p_payload": job.payload,
                "p_metadata": job.metadata,
                "p_now": self._now(),
            },
        )
        return ImageJob.model_validate(result["job"]), bool(result["created"])

    def get_job(self, job_id: int) -> ImageJob | None:
        rows = self._select("image_jobs", id=job_id)
        return ImageJob.model_validate(rows[0]) if rows else None

    def get_job_by_key(self, idempotency_key: str) -> ImageJob | None:
        rows = self._select("image_jobs", idempotency_key=idempotency_key)
        return ImageJob.model_validate(rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[ImageJob]:
        rows = self._select("image_jobs", status=status, source=source, limit=limit, before_id=before_id)
        return [ImageJob.model_validate(r) for r in rows]

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[ImageJob]:
        params = {"p_worker": worker_id, "p_limit": limit, "p_lease_seconds": lease_seconds}
        rows = self._rpc("imagematch_claim", {**params, "p_now": self._now()})
        return sorted((ImageJob.model_validate(r) for r in rows), key=lambda j: (j.next_attempt_at, j.id))

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> ImageJob | None:
        params = {"p_id": job_id, "p_worker": worker_id, "p_lease_seconds": lease_seconds}
        rows = self._rpc("imagematch_claim_job", {**params, "p_now": self._now()})
        return ImageJob.model_validate(rows[0]) if rows else None

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        params = {"p_id": job_id, "p_worker": worker_id, "p_lease_seconds": lease_seconds}
        return bool(self._rpc("imagematch_heartbeat", {**params, "p_now": self._now()}))

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
        params = {
            "p_id": job_id,
            "p_worker": worker_id,
            "p_status": status.value,
            "p_error_kind": error_kind.value if error_kind else None,
            "p_error": error,
            "p_retry_at": retry_at.isoformat() if retry_at else None,
            "p_prediction": prediction_json(prediction) if prediction else None,
            "p_now": self._now(),
        }
        return bool(self._rpc("imagematch_finish", params))

    def complete(self, job_id: int, worker_id: str, prediction: NewPrediction | None) -> bool:
        return self._finish(job_id, worker_id, JobStatus.COMPLETE, prediction=prediction)

    def fail(
        self, job_id: int, worker_id: str, *, kind: ErrorKind, error: str, retry_at: datetime | None
    ) -> bool:
        return self._finish(
            job_id, worker_id, JobStatus.FAILED, error_kind=kind, error=error, retry_at=retry_at
        )

    def skip(self, job_id: int, worker_id: str, *, reason: str) -> bool:
        return self._finish(job_id, worker_id, JobStatus.SKIPPED, error=reason)

    def requeue(self, job_id: int) -> ImageJob | None:
        rows = self._rpc("imagematch_requeue", {"p_id": job_id, "p_now": self._now()})
        return ImageJob.model_validate(rows[0]) if rows else None

    def requeue_failed(self, *, source: str | None = None) -> int:
        return int(self._rpc("imagematch_requeue_failed", {"p_source": source, "p_now": self._now()}))

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        params = {"p_max_attempts": max_attempts, "p_grace_seconds": pending_grace_seconds}
        return SweepReport(**self._rpc("imagematch_sweep", {**params, "p_now": self._now()}))

    def count_by_status(self) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        for row in self._rpc("imagematch_count_by_status", {}):
            counts[JobStatus(row["status"])] = int(row["n"])
        return counts

    def get_prediction(self, job_id: int) -> Prediction | None:
        rows = self._select("image_prediction_log", job_id=job_id)
        return Prediction.model_validate(rows[0]) if rows else None

    def list_predictions(
        self, *, ticket_id: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[Prediction]:
        rows = self._select("image_prediction_log", ticket_id=ticket_id, limit=limit, before_id=before_id)
        return [Prediction.model_validate(r) for r in rows]
