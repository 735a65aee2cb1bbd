"""Parts of the SQLite ledger kept apart (its module is at the size limit): upgrading a ledger file
made by an older version, and :meth:`SqliteFigures.job_figures` (``/metrics``)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from imagematch.ledger.base import JobFigures, OutcomeCount
from imagematch.ledger.sql import load_queries

__all__ = ["SqliteFigures", "upgrade_schema"]

Q = load_queries("sqlite")


def upgrade_schema(conn: sqlite3.Connection) -> None:
    """Add what later versions added to a ledger made before them: prediction columns, the jobs'
    ``request_id``, the outcome counters (filled from the attempts recorded so far)."""
    columns = {row["name"] for row in conn.execute(Q["prediction_columns"])}
    for column in ("quality", "image_sha256"):
        if column not in columns:
            conn.execute(Q[f"add_prediction_{column}"])
    if "request_id" not in {row["name"] for row in conn.execute(Q["job_columns"])}:
        conn.execute(Q["add_job_request_id"])
    if conn.execute(Q["has_outcome_counts"]).fetchone() is None:
        conn.executescript(Q["schema_outcome_counts"])


class SqliteFigures:
    """Mixed into ``SqliteLedger``: reads through its per-thread reader connection."""

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def job_figures(self) -> JobFigures:
        with self._connect() as conn:
            rows = conn.execute(Q["outcome_counts"]).fetchall()
            since = conn.execute(Q["oldest_pending_since"]).fetchone()["since"]
        return JobFigures(
            outcomes=[OutcomeCount.model_validate(dict(row)) for row in rows],
            oldest_pending_since=datetime.fromtimestamp(since, UTC) if since is not None else None,
        )
