"""The SQLite ledger's labels (a mixin of :class:`~imagematch.ledger.sqlite.SqliteLedger`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, TypeVar

from imagematch.labels import Label, NewLabel, Verdict
from imagematch.sql_files import load_named_sql

__all__ = ["LABELS_SCHEMA", "SqliteLabels"]

Q = load_named_sql("imagematch.ledger.sql", "sqlite_labels.sql")
LABELS_SCHEMA = Q["schema_labels"]
T = TypeVar("T")


def _label(row: sqlite3.Row) -> Label:
    data: dict[str, Any] = dict(row)
    for column in ("created_at", "ended_at"):
        if data[column] is not None:
            data[column] = datetime.fromtimestamp(data[column], UTC)
    return Label.model_validate(data)


class SqliteLabels:
    _now: Callable[[], float]
    _write: Callable[[Callable[[sqlite3.Connection], Any]], Any]
    _connect: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def put_label(self, label: NewLabel) -> tuple[Label, bool]:
        params = {**label.model_dump(mode="json"), "now": self._now(), "by": label.given_by}

        def write(conn: sqlite3.Connection) -> tuple[sqlite3.Row, bool]:
            current = conn.execute(Q["current_label"], params).fetchone()
            if current is not None and _label(current).same_as(label):
                return current, False
            conn.execute(Q["end_label"], params).fetchall()
            return conn.execute(Q["insert_label"], params).fetchone(), True

        row, created = self._write(write)
        return _label(row), created

    def retract_label(self, job_id: int, *, by: str) -> Label | None:
        params = {"job_id": job_id, "by": by, "now": self._now()}
        row = self._write(lambda conn: conn.execute(Q["end_label"], params).fetchone())
        return _label(row) if row else None

    def current_label(self, job_id: int) -> Label | None:
        with self._connect() as conn:
            row = conn.execute(Q["current_label"], {"job_id": job_id}).fetchone()
        return _label(row) if row else None

    def list_labels(
        self,
        *,
        since: datetime | None = None,
        verdict: Verdict | None = None,
        job_id: int | None = None,
        product_id: str | None = None,
        image_sha256: str | None = None,
        current_only: bool = True,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[Label]:
        params = {
            "since": since.timestamp() if since else None,
            "verdict": verdict.value if verdict else None,
            "job_id": job_id,
            "product_id": product_id,
            "image_sha256": image_sha256,
            "current_only": current_only,
            "after_id": after_id,
            "limit": limit,
        }
        with self._connect() as conn:
            return [_label(row) for row in conn.execute(Q["list_labels"], params).fetchall()]
