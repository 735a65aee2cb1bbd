"""The SQLite ledger: the embedded default. One file, WAL mode, safe across threads and processes.

Reads use one kept-open connection per thread; every write of the process goes through one writer
connection with group commit (:mod:`imagematch.ledger.group_commit`): writes arriving while a
transaction commits share the next ``BEGIN IMMEDIATE`` transaction, which takes SQLite's single
write lock up front — that is what makes :meth:`claim` exclusive between concurrent workers, also
across processes — and one fsync. A write returns only once its transaction is committed."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from imagematch.entities import Entity, EntityMatch, EntityPhoto, EntityRef
from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, JobAttempt, JobOutcome, SweepReport, numbered_attempts, utcnow
from imagematch.ledger.sql import load_queries
from imagematch.ledger.sqlite_conn import SqliteWriter, open_connection
from imagematch.ledger.sqlite_figures import SqliteFigures, upgrade_schema
from imagematch.ledger.sqlite_labels import LABELS_SCHEMA, SqliteLabels
from imagematch.ledger.sqlite_sessions import SqliteSessionRevocations
from imagematch.models import ErrorKind, Job, JobStatus, NewJob, NewPrediction, Prediction

__all__ = ["SqliteLedger"]

_TIME_COLUMNS = ("next_attempt_at", "locked_until", "created_at", "updated_at", "finished_at")
Q = load_queries("sqlite")
T = TypeVar("T")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _job(row: sqlite3.Row) -> Job:
    data: dict[str, Any] = dict(row)
    data["payload"] = json.loads(data["payload"])
    data["metadata"] = json.loads(data["metadata"])
    for column in _TIME_COLUMNS:
        data[column] = _dt(data[column])
    return Job.model_validate(data)


def _attempt(row: sqlite3.Row) -> JobAttempt:
    data: dict[str, Any] = dict(row)
    data["next_attempt_at"] = _dt(data["next_attempt_at"])
    data["finished_at"] = _dt(data["finished_at"])
    return JobAttempt.model_validate(data)


def _prediction_row(job_id: int, prediction: NewPrediction, now: float) -> dict[str, Any]:
    """The parameters of ``insert_prediction``."""
    best = prediction.best
    return {
        **prediction.model_dump(exclude={"matches", "references"}),
        **prediction.reference_columns(),
        "matches": json.dumps([m.model_dump() for m in prediction.matches]),
        "quality": prediction.quality.model_dump_json() if prediction.quality else None,
        "best_product_id": best.product_id if best else None,
        "best_score": best.score if best else None,
        "job_id": job_id,
        "now": now,
    }


def _prediction(row: sqlite3.Row) -> Prediction:
    data: dict[str, Any] = dict(row)
    data["matches"] = json.loads(data["matches"])
    data["quality"] = json.loads(data["quality"]) if data.get("quality") else None
    data["no_confident_match"] = bool(data["no_confident_match"])
    data["created_at"] = _dt(data["created_at"])
    return Prediction.model_validate(data)


class SqliteLedger(SqliteLabels, SqliteFigures, SqliteSessionRevocations):
    def __init__(self, path: Path, *, clock: Clock = utcnow, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        self._writer = SqliteWriter(self._open)
        self._readers = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._generation = 0  # bumped by close(): threads then open fresh readers

    def _now(self) -> float:
        return self._clock().timestamp()

    def _open(self) -> sqlite3.Connection:
        return open_connection(self.path, busy_timeout_s=self._busy_timeout_s)

    def _write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``write`` in a committed transaction (shared with concurrent writes: group commit)."""
        return self._writer.run(write)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader connection (kept open: no set-up per call)."""
        held: tuple[int, sqlite3.Connection] | None = getattr(self._readers, "conn", None)
        if held is None or held[0] != self._generation:
            conn = self._open()
            with self._readers_lock:
                self._all_readers.append(conn)
            held = self._readers.conn = (self._generation, conn)
        try:
            yield held[1]
        except sqlite3.OperationalError as exc:  # "database is locked" and friends
            raise TransientError(f"ledger busy: {exc}") from exc

    def migrate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            if conn.execute(Q["has_global_keys"]).fetchone():
                conn.execute("PRAGMA foreign_keys = OFF")
                conn.executescript(Q["scope_keys_by_kind"])
                conn.execute("PRAGMA foreign_keys = ON")
            for schema in (Q["schema"], Q["schema_entities"], LABELS_SCHEMA):
                conn.executescript(schema)
            upgrade_schema(conn)

    def close(self) -> None:
        self._writer.close()
        with self._readers_lock:
            self._generation += 1
            readers, self._all_readers = self._all_readers, []
        for conn in readers:
            conn.close()

    def submit(self, job: NewJob) -> tuple[Job, bool]:
        params = {
            **job.model_dump(),
            "payload": json.dumps(job.payload),
            "metadata": json.dumps(job.metadata),
            "now": self._now(),
        }

        def write(conn: sqlite3.Connection) -> tuple[sqlite3.Row, bool]:
            row = conn.execute(Q["insert_job"], params).fetchone()
            if row is not None:
                return row, True
            return conn.execute(Q["job_by_key"], params).fetchone(), False

        row, created = self._write(write)
        return _job(row), created

    def get_job(self, job_id: int) -> Job | None:
        with self._connect() as conn:
            row = conn.execute(Q["job_by_id"], {"id": job_id}).fetchone()
        return _job(row) if row else None

    def get_job_by_key(self, idempotency_key: str, *, kind: str) -> Job | None:
        params = {"kind": kind, "idempotency_key": idempotency_key}
        with self._connect() as conn:
            row = conn.execute(Q["job_by_key"], params).fetchone()
        return _job(row) if row else None

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        source: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Job]:
        params = {"status": status, "source": source, "limit": limit, "before_id": before_id}
        with self._connect() as conn:
            return [_job(row) for row in conn.execute(Q["list_jobs"], params).fetchall()]

    def claim(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[Job]:
        params = {"worker_id": worker_id, "limit": limit, "lease_seconds": lease_seconds}
        rows = self._write(lambda conn: conn.execute(Q["claim"], {**params, "now": self._now()}).fetchall())
        return sorted((_job(row) for row in rows), key=lambda j: (j.next_attempt_at, j.id))

    def claim_job(self, job_id: int, worker_id: str, *, lease_seconds: float) -> Job | None:
        params = {"id": job_id, "worker_id": worker_id, "lease_seconds": lease_seconds, "now": self._now()}
        row = self._write(lambda conn: conn.execute(Q["claim_job"], params).fetchone())
        return _job(row) if row else None

    def heartbeat(self, job_id: int, worker_id: str, *, lease_seconds: float) -> bool:
        params = {"id": job_id, "worker_id": worker_id, "lease_seconds": lease_seconds}
        return self._write(
            lambda conn: conn.execute(Q["heartbeat"], {**params, "now": self._now()}).rowcount == 1
        )

    def claim_jobs(self, job_ids: list[int], worker_id: str, *, lease_seconds: float) -> list[Job]:
        params = {"worker_id": worker_id, "lease_seconds": lease_seconds, "now": self._now()}

        def write(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            rows = (conn.execute(Q["claim_job"], {**params, "id": i}) for i in sorted(set(job_ids)))
            return [row for cursor in rows if (row := cursor.fetchone()) is not None]

        return [_job(row) for row in self._write(write)]

    def _record(self, conn: sqlite3.Connection, worker_id: str, outcome: JobOutcome) -> bool:
        """Record ``outcome`` (and its prediction) in ``conn``'s transaction, if ``worker_id``
        still holds the job."""
        now = self._now()
        params = {
            "id": outcome.job_id,
            "worker_id": worker_id,
            "status": outcome.status,
            "error_kind": outcome.error_kind,
            "error": outcome.error,
            "retry_at": _ts(outcome.retry_at),
            "now": now,
        }
        if conn.execute(Q["finish"], params).rowcount != 1:
            return False
        if outcome.prediction is not None:
            conn.execute(Q["insert_prediction"], _prediction_row(outcome.job_id, outcome.prediction, now))
        return True

    def finish_many(self, worker_id: str, outcomes: list[JobOutcome]) -> list[bool]:
        return self._write(lambda conn: [self._record(conn, worker_id, o) for o in outcomes])

    def complete(self, job_id: int, worker_id: str, prediction: NewPrediction | None) -> bool:
        return self.finish_many(worker_id, [JobOutcome(job_id, JobStatus.COMPLETE, prediction)])[0]

    def fail(
        self, job_id: int, worker_id: str, *, error_kind: ErrorKind, error: str, retry_at: datetime | None
    ) -> bool:
        outcome = JobOutcome(job_id, JobStatus.FAILED, error_kind=error_kind, error=error, retry_at=retry_at)
        return self.finish_many(worker_id, [outcome])[0]

    def skip(self, job_id: int, worker_id: str, *, reason: str) -> bool:
        return self.finish_many(worker_id, [JobOutcome(job_id, JobStatus.SKIPPED, error=reason)])[0]

    def requeue(self, job_id: int) -> Job | None:
        def write(conn: sqlite3.Connection) -> Any:  # the job's row, or None
            conn.execute(Q["requeue"], {"id": job_id, "now": self._now()})
            return conn.execute(Q["job_by_id"], {"id": job_id}).fetchone()

        row = self._write(write)
        return _job(row) if row else None

    def requeue_failed(self, *, source: str | None = None) -> int:
        return self._write(
            lambda conn: conn.execute(Q["requeue_failed"], {"source": source, "now": self._now()}).rowcount
        )

    def sweep(self, *, max_attempts: int, pending_grace_seconds: float) -> SweepReport:
        now = self._now()

        def write(conn: sqlite3.Connection) -> SweepReport:
            report = SweepReport(
                retries_due=conn.execute(Q["sweep_retries_due"], {"now": now}).rowcount,
                gave_up=conn.execute(
                    Q["sweep_expired_give_up"], {"now": now, "max_attempts": max_attempts}
                ).rowcount,
                leases_expired=conn.execute(Q["sweep_expired_requeue"], {"now": now}).rowcount,
            )
            rows = conn.execute(Q["due_pending"], {"now": now, "cutoff": now - pending_grace_seconds})
            report.due_pending = [row["id"] for row in rows.fetchall()]
            return report

        return self._write(write)

    def count_by_status(self, *, kind: str | None = None) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        with self._connect() as conn:
            for row in conn.execute(Q["count_by_status"], {"kind": kind}).fetchall():
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
            return [_prediction(row) for row in conn.execute(Q["list_predictions"], params).fetchall()]

    def add_entity_photo(self, photo: EntityPhoto) -> None:
        params = {**photo.model_dump(exclude={"created_at"}), "now": self._now()}

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(Q["upsert_entity"], params)
            conn.execute(Q["upsert_entity_photo"], params)
            conn.execute(Q["count_entity_photos"], params)

        self._write(write)

    def entity_photos(self, entity: EntityRef | None = None) -> list[EntityPhoto]:
        params = entity.ref.model_dump() if entity else {"entity_type": None, "entity_id": None}
        with self._connect() as conn:
            return [
                EntityPhoto.model_validate(
                    {**row, "low_quality": bool(row["low_quality"]), "created_at": _dt(row["created_at"])}
                )
                for row in map(dict, conn.execute(Q["entity_photos"], params))
            ]

    def get_entity(self, entity: EntityRef) -> Entity | None:
        with self._connect() as conn:
            row = conn.execute(Q["entity_by_ref"], entity.ref.model_dump()).fetchone()
        return _entity(row) if row else None

    def list_entities(
        self, *, since: datetime | None = None, after: EntityRef | None = None, limit: int = 500
    ) -> list[Entity]:
        params = {
            "after_type": after.entity_type if after else None,
            "after_id": after.entity_id if after else None,
            "since": _ts(since),
            "limit": limit,
        }
        with self._connect() as conn:
            return [_entity(row) for row in conn.execute(Q["list_entities"], params)]

    def replace_entity_matches(
        self, entity: EntityRef, matches: list[EntityMatch], *, index_version: str
    ) -> Entity | None:
        ref = entity.ref.model_dump()
        now = self._now()

        def write(conn: sqlite3.Connection) -> sqlite3.Row | None:
            before: sqlite3.Row | None = conn.execute(Q["entity_by_ref"], ref).fetchone()
            if before is None:
                return None
            conn.execute(Q["delete_entity_matches"], ref)
            for match in matches:
                row = match.model_dump(exclude={"evidence", "index_version", "computed_at"})
                evidence = json.dumps([e.model_dump() for e in match.evidence])
                conn.execute(
                    Q["insert_entity_match"],
                    {**ref, **row, "evidence": evidence, "index_version": index_version, "now": now},
                )
            conn.execute(
                Q["stamp_entity_matches"],
                {
                    **ref,
                    "index_version": index_version,
                    "now": now,
                    "top_product_id": matches[0].product_id if matches else None,
                    "floor_score": min((m.score for m in matches), default=None),
                    "match_count": len(matches),
                },
            )
            return before

        before = self._write(write)
        return _entity(before) if before is not None else None

    def entity_matches(self, entity: EntityRef) -> list[EntityMatch]:
        with self._connect() as conn:
            rows = [dict(row) for row in conn.execute(Q["entity_matches"], entity.ref.model_dump())]
        return [
            EntityMatch.model_validate(
                {**row, "evidence": json.loads(row["evidence"]), "computed_at": _dt(row["computed_at"])}
            )
            for row in rows
        ]

    def entities_matching(self, product_id: str) -> list[EntityRef]:
        with self._connect() as conn:
            rows = conn.execute(Q["entities_matching"], {"product_id": product_id}).fetchall()
        return [EntityRef(entity_type=row["entity_type"], entity_id=row["entity_id"]) for row in rows]

    def advance_entities(self, *, from_version: str, to_version: str, keep: list[EntityRef]) -> int:
        params = {
            "from_version": from_version,
            "to_version": to_version,
            "keep": json.dumps([[ref.entity_type, ref.entity_id] for ref in keep]),
        }
        return self._write(lambda conn: conn.execute(Q["advance_entities"], params).rowcount)

    def count_stale_entities(self, index_version: str) -> int:
        with self._connect() as conn:
            row = conn.execute(Q["count_stale_entities"], {"index_version": index_version}).fetchone()
        return int(row["n"])

    def list_attempts(self, job_id: int) -> list[JobAttempt]:
        with self._connect() as conn:
            rows = conn.execute(Q["list_attempts"], {"job_id": job_id}).fetchall()
        return numbered_attempts([_attempt(row) for row in rows])


def _entity(row: sqlite3.Row) -> Entity:
    data: dict[str, Any] = dict(row)
    for column in ("matched_at", "created_at", "updated_at"):
        data[column] = _dt(data[column])
    return Entity.model_validate(data)
