"""The Postgres ledger (psycopg 3). State transitions are the SQL functions of the migrations in
``ledger/sql/migrations`` (also ``supabase/migrations``), shared with the Supabase backend; only
plain reads are written here. Claims use ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.resources import files
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, SweepReport, utcnow
from imagematch.models import ErrorKind, ImageJob, JobStatus, NewJob, NewPrediction, Prediction

__all__ = ["PostgresLedger", "migration_files", "prediction_json"]

_MIGRATION_LOCK = 7_411_204  # pg_advisory_xact_lock key: one migrator at a time


def migration_files() -> list[tuple[str, str]]:
    """``(name, sql)`` of every migration, in order."""
    folder = files("imagematch.ledger.sql").joinpath("migrations")
    found = [(f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)


def prediction_json(prediction: NewPrediction) -> dict[str, Any]:
    """The ``p_prediction`` argument of ``imagematch_finish``."""
    best = prediction.best
    return {
        **prediction.model_dump(mode="json"),
        "best_product_id": best.product_id if best else None,
        "best_score": best.score if best else None,
    }


class PostgresLedger:
    def __init__(self, url: str, *, clock: Clock = utcnow, max_connections: int = 8) -> None:
        self._clock = clock
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            connection_class=psycopg.Connection[dict[str, Any]],
            min_size=1,
            max_size=max_connections,
            kwargs={"row_factory": dict_row},
            open=True,
        )

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with self._pool.connection() as conn:
                yield conn  # commits on success, rolls back on error
        except psycopg.OperationalError as exc:
            raise TransientError(f"ledger database unavailable: {exc}") from exc

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchall()

    def _value(self, sql: str, params: dict[str, Any]) -> Any:
        rows = self._rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def migrate(self) -> None:
        with self._conn() as conn:
            conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "create table if not exists imagematch_migrations "
                "(name text primary key, applied_at timestamptz not null default now())"
            )
            done = {r["name"] for r in conn.execute("select name from imagematch_migrations")}
            for name, sql in migration_files():
                if name not in done:
                    conn.execute(sql.encode())
                    conn.execute("insert into imagematch_migrations (name) values (%s)", (name,))

    def close(self) -> None:
        self._pool.close()

    def submit(self, job: NewJob) -> tuple[ImageJob, bool]:
        result = self._value(
            "select imagematch_submit(%(kind)s, %(source)s, %(key)s, %(payload)s, %(metadata)s, %(now)s)",
            {
                "kind": job.kind,
                "source": job.source,
                "key": job.idempotency_key,
                "payload": Jsonb(job.payload),
                "metadata": Jsonb(job.metadata),
                "now": self._clock(),
            },
        )
        return ImageJob.model_validate(result["job"]), bool(result["created"])

    def get_job(self, job_id: int) -> ImageJob | None:
        rows = self._rows("select * from image_jobs where id = %(id)s", {"id": job_id})
        return ImageJob.model_validate(rows[0]) if rows else None

    def get_job_by_key(self, idempotency_key: str) -> ImageJob | None:
        rows = self._rows("select * from image_jobs where idempotency_key = %(k)s", {"k": idempotency_key})
        return ImageJob.model_validate(rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[ImageJob]:
        rows = self._rows(
            "select * from image_jobs where (%(status)s::text is null or status = %(status)s) "
            "and (%(source)s::text is null or source = %(source)s) "
            "and (%(before)s::bigint is null or id < %(before)s) order by id desc limit %(limit)s",
            {"status": status, "source": source, "before": before_id, "limit": limit},
        )
        return [ImageJob.model_validate(r) for r in rows]

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[ImageJob]:
        rows = self._rows(
            "select * from imagematch_claim(%(w)s, %(n)s, %(lease)s, %(now)s)",
            {"w": worker_id, "n": limit, "lease": lease_seconds, "now": self._clock()},
        )
        return sorted((ImageJob.model_validate(r) for r in rows), key=lambda j: (j.next_attempt_at, j.id))

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> ImageJob | None:
        rows = self._rows(
            "select * from imagematch_claim_job(%(id)s, %(w)s, %(lease)s, %(now)s)",
            {"id": job_id, "w": worker_id, "lease": lease_seconds, "now": self._clock()},
        )
        return ImageJob.model_validate(rows[0]) if rows else None

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        return bool(
            self._value(
                "select imagematch_heartbeat(%(id)s, %(w)s, %(lease)s, %(now)s)",
                {"id": job_id, "w": worker_id, "lease": lease_seconds, "now": self._clock()},
            )
        )

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
        return bool(
            self._value(
                "select imagematch_finish(%(id)s, %(w)s, %(status)s, %(kind)s, %(error)s, %(retry_at)s, "
                "%(prediction)s, %(now)s)",
                {
                    "id": job_id,
                    "w": worker_id,
                    "status": status,
                    "kind": error_kind,
                    "error": error,
                    "retry_at": retry_at,
                    "prediction": Jsonb(prediction_json(prediction)) if prediction else None,
                    "now": self._clock(),
                },
            )
        )

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
        rows = self._rows(
            "select * from imagematch_requeue(%(id)s, %(now)s)", {"id": job_id, "now": self._clock()}
        )
        return ImageJob.model_validate(rows[0]) if rows else None

    def requeue_failed(self, *, source: str | None = None) -> int:
        return int(
            self._value(
                "select imagematch_requeue_failed(%(s)s, %(now)s)", {"s": source, "now": self._clock()}
            )
        )

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        result = self._value(
            "select imagematch_sweep(%(max)s, %(grace)s, %(now)s)",
            {"max": max_attempts, "grace": pending_grace_seconds, "now": self._clock()},
        )
        return SweepReport(**result)

    def count_by_status(self) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        for row in self._rows("select * from imagematch_count_by_status()", {}):
            counts[JobStatus(row["status"])] = int(row["n"])
        return counts

    def get_prediction(self, job_id: int) -> Prediction | None:
        rows = self._rows("select * from image_prediction_log where job_id = %(id)s", {"id": job_id})
        return Prediction.model_validate(rows[0]) if rows else None

    def list_predictions(
        self, *, ticket_id: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[Prediction]:
        rows = self._rows(
            "select * from image_prediction_log where (%(t)s::text is null or ticket_id = %(t)s) "
            "and (%(before)s::bigint is null or id < %(before)s) order by id desc limit %(limit)s",
            {"t": ticket_id, "before": before_id, "limit": limit},
        )
        return [Prediction.model_validate(r) for r in rows]
