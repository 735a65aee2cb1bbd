"""The SQLite ledger: the embedded default. One file, WAL mode, safe across threads and processes.

Each call opens a short-lived connection (cheap for SQLite) so threads never share one; writes run
in ``BEGIN IMMEDIATE`` transactions, which take SQLite's single write lock up front — that is what
makes :meth:`claim` exclusive between concurrent workers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, SweepReport, utcnow
from imagematch.ledger.sql import load_queries
from imagematch.models import ErrorKind, ImageJob, JobStatus, NewJob, NewPrediction, Prediction

__all__ = ["SqliteLedger"]

_TIME_COLUMNS = ("next_attempt_at", "locked_until", "created_at", "updated_at", "finished_at")
Q = load_queries("sqlite")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _job(row: sqlite3.Row) -> ImageJob:
    data: dict[str, Any] = dict(row)
    data["payload"] = json.loads(data["payload"])
    data["metadata"] = json.loads(data["metadata"])
    for column in _TIME_COLUMNS:
        data[column] = _dt(data[column])
    return ImageJob.model_validate(data)


def _prediction(row: sqlite3.Row) -> Prediction:
    data: dict[str, Any] = dict(row)
    data["matches"] = json.loads(data["matches"])
    data["no_confident_match"] = bool(data["no_confident_match"])
    data["created_at"] = _dt(data["created_at"])
    return Prediction.model_validate(data)


class SqliteLedger:
    def __init__(self, path: Path, *, clock: Clock = utcnow, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s

    def _now(self) -> float:
        return self._clock().timestamp()

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise TransientError(f"cannot open ledger {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # "database is locked" and friends
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise TransientError(f"ledger busy: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def migrate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(Q["schema"])

    def close(self) -> None:
        pass

    def submit(self, job: NewJob) -> tuple[ImageJob, bool]:
        params = {
            **job.model_dump(),
            "payload": json.dumps(job.payload),
            "metadata": json.dumps(job.metadata),
            "now": self._now(),
        }
        with self._connect(write=True) as conn:
            row = conn.execute(Q["insert_job"], params).fetchone()
            if row is not None:
                return _job(row), True
            existing = conn.execute(Q["job_by_key"], params).fetchone()
            return _job(existing), False

    def get_job(self, job_id: int) -> ImageJob | None:
        with self._connect() as conn:
            row = conn.execute(Q["job_by_id"], {"id": job_id}).fetchone()
        return _job(row) if row else None

    def get_job_by_key(self, idempotency_key: str) -> ImageJob | None:
        with self._connect() as conn:
            row = conn.execute(Q["job_by_key"], {"idempotency_key": idempotency_key}).fetchone()
        return _job(row) if row else None

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[ImageJob]:
        params = {"status": status, "source": source, "limit": limit, "before_id": before_id}
        with self._connect() as conn:
            return [_job(row) for row in conn.execute(Q["list_jobs"], params)]

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[ImageJob]:
        params = {"worker_id": worker_id, "limit": limit, "lease_seconds": lease_seconds}
        with self._connect(write=True) as conn:
            rows = conn.execute(Q["claim"], {**params, "now": self._now()}).fetchall()
        return sorted((_job(row) for row in rows), key=lambda j: (j.next_attempt_at, j.id))

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> ImageJob | None:
        params = {"id": job_id, "worker_id": worker_id, "lease_seconds": lease_seconds, "now": self._now()}
        with self._connect(write=True) as conn:
            row = conn.execute(Q["claim_job"], params).fetchone()
        return _job(row) if row else None

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        params = {"id": job_id, "worker_id": worker_id, "lease_seconds": lease_seconds}
        with self._connect(write=True) as conn:
            return conn.execute(Q["heartbeat"], {**params, "now": self._now()}).rowcount == 1

    def _finish(
        self,
        conn: sqlite3.Connection,
        job_id: int,
        worker_id: str,
        status: JobStatus,
        *,
        error_kind: ErrorKind | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        params = {
            "id": job_id,
            "worker_id": worker_id,
            "status": status,
            "error_kind": error_kind,
            "error": error,
            "retry_at": _ts(retry_at),
            "now": self._now(),
        }
        return conn.execute(Q["finish"], params).rowcount == 1

    def complete(self, job_id: int, worker_id: str, prediction: NewPrediction | None) -> bool:
        with self._connect(write=True) as conn:
            if not self._finish(conn, job_id, worker_id, JobStatus.COMPLETE):
                return False
            if prediction is not None:
                best = prediction.best
                conn.execute(
                    Q["insert_prediction"],
                    {
                        **prediction.model_dump(exclude={"matches", "references"}),
                        **prediction.reference_columns(),
                        "matches": json.dumps([m.model_dump() for m in prediction.matches]),
                        "best_product_id": best.product_id if best else None,
                        "best_score": best.score if best else None,
                        "job_id": job_id,
                        "now": self._now(),
                    },
                )
            return True

    def fail(
        self, job_id: int, worker_id: str, *, kind: ErrorKind, error: str, retry_at: datetime | None
    ) -> bool:
        with self._connect(write=True) as conn:
            return self._finish(
                conn, job_id, worker_id, JobStatus.FAILED, error_kind=kind, error=error, retry_at=retry_at
            )

    def skip(self, job_id: int, worker_id: str, *, reason: str) -> bool:
        with self._connect(write=True) as conn:
            return self._finish(conn, job_id, worker_id, JobStatus.SKIPPED, error=reason)

    def requeue(self, job_id: int) -> ImageJob | None:
        with self._connect(write=True) as conn:
            conn.execute(Q["requeue"], {"id": job_id, "now": self._now()})
            row = conn.execute(Q["job_by_id"], {"id": job_id}).fetchone()
        return _job(row) if row else None

    def requeue_failed(self, *, source: str | None = None) -> int:
        with self._connect(write=True) as conn:
            return conn.execute(Q["requeue_failed"], {"source": source, "now": self._now()}).rowcount

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        now = self._now()
        with self._connect(write=True) as conn:
            report = SweepReport(
                retries_due=conn.execute(Q["sweep_retries_due"], {"now": now}).rowcount,
                gave_up=conn.execute(
                    Q["sweep_expired_give_up"], {"now": now, "max_attempts": max_attempts}
                ).rowcount,
                leases_expired=conn.execute(Q["sweep_expired_requeue"], {"now": now}).rowcount,
            )
            rows = conn.execute(Q["due_pending"], {"now": now, "cutoff": now - pending_grace_seconds})
            report.due_pending = [row["id"] for row in rows]
        return report

    def count_by_status(self, *, kind: str | None = None) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        with self._connect() as conn:
            for row in conn.execute(Q["count_by_status"], {"kind": kind}):
                counts[JobStatus(row["status"])] = row["n"]
        return counts

    def get_prediction(self, job_id: int) -> Prediction | None:
        with self._connect() as conn:
            row = conn.execute(Q["prediction_by_job"], {"job_id": job_id}).fetchone()
        return _prediction(row) if row else None

    def list_predictions(
        self, *, ticket_id: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[Prediction]:
        params = {"ticket_id": ticket_id, "limit": limit, "before_id": before_id}
        with self._connect() as conn:
            return [_prediction(row) for row in conn.execute(Q["list_predictions"], params)]
