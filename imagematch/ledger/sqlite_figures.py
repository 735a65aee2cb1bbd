"""Parts of the SQLite ledger kept apart (its module is at the size limit): upgrading a ledger file
made by an older version, and :meth:`SqliteFigures.job_figures` (``/metrics``)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TypeVar

from imagematch.ledger.base import JobFigures, OutcomeCount
from imagematch.ledger.sql import load_queries

__all__ = ["SqliteFigures", "upgrade_schema"]

Q = load_queries("sqlite")
T = TypeVar("T")


def upgrade_schema(conn: sqlite3.Connection) -> None:
    """Add what later versions added to a ledger made before them: prediction columns, the jobs'
    ``request_id``, the outcome counters (filled from the attempts recorded so far)."""
    columns = {row["name"] for row in conn.execute(Q["prediction_columns"])}
    for column in ("quality", "image_sha256", "confidence", "band"):
        if column not in columns:
            conn.execute(Q[f"add_prediction_{column}"])
    if "request_id" not in {row["name"] for row in conn.execute(Q["job_columns"])}:
        conn.execute(Q["add_job_request_id"])
    if conn.execute(Q["has_outcome_counts"]).fetchone() is None:
        conn.executescript(Q["schema_outcome_counts"])
    conn.executescript(Q["schema_process_metrics"])


class SqliteFigures:
    """Mixed into ``SqliteLedger``: reads through its per-thread reader connection, writes through
    its group-committed writer."""

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    def put_process_metrics(self, process_id: str, samples: dict[str, float]) -> None:
        params = {"process_id": process_id, "samples": json.dumps(samples), "now": self._now()}
        self._write(lambda conn: conn.execute(Q["put_process_metrics"], params))

    def process_metrics_total(self) -> dict[str, float]:
        with self._connect() as conn:
            return {row["key"]: float(row["total"]) for row in conn.execute(Q["process_metrics_total"])}

    def retire_process_metrics(self, *, before: datetime) -> int:
        def fold(conn: sqlite3.Connection) -> int:  # one write transaction: nothing else interleaves
            rows = conn.execute(Q["old_process_metrics"], {"before": before.timestamp()}).fetchall()
            old = [row for row in rows if row["process_id"] != "retired"]
            if not old:
                return 0
            total: Counter[str] = Counter()
            for row in rows:
                total.update(json.loads(row["samples"]))
            conn.execute(Q["delete_process_metrics"], {"before": before.timestamp()})
            retired = {"process_id": "retired", "samples": json.dumps(dict(total)), "now": self._now()}
            conn.execute(Q["put_process_metrics"], retired)
            return len(old)

        return self._write(fold)

    def job_figures(self) -> JobFigures:
        with self._connect() as conn:
            rows = conn.execute(Q["outcome_counts"]).fetchall()
            since = conn.execute(Q["oldest_pending_since"]).fetchone()["since"]
        return JobFigures(
            outcomes=[OutcomeCount.model_validate(dict(row)) for row in rows],
            oldest_pending_since=datetime.fromtimestamp(since, UTC) if since is not None else None,
        )
