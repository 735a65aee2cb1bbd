"""A SQLite ledger created before idempotency keys were scoped by kind is upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from imagematch.ledger import open_ledger
from imagematch.ledger.sql import load_queries
from imagematch.models import NewJob
from imagematch.sources.zendesk import ZendeskNotePayload


def test_an_old_sqlite_ledger_gets_kind_scoped_keys_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old_schema = load_queries("sqlite")["schema"].replace(
        "idempotency_key TEXT    NOT NULL,", "idempotency_key TEXT    NOT NULL UNIQUE,"
    )
    old_schema = "\n".join(line for line in old_schema.splitlines() if "image_jobs_kind_key" not in line)
    with sqlite3.connect(path) as conn:
        conn.executescript(old_schema)
        conn.execute(
            "insert into image_jobs (kind, source, idempotency_key, status, created_at, updated_at) "
            "values ('match_image', 'api', 'k', 'complete', 0, 0)"
        )
        conn.execute(
            "insert into image_prediction_log (job_id, source, matches, embedder_id, index_version, "
            "latency_ms, created_at) values (1, 'api', '[]', 'e', 'v1', 1, 0)"
        )
    ledger = open_ledger(f"sqlite:///{path}")
    note, created = ledger.submit(NewJob(kind=ZendeskNotePayload.KIND, source="zendesk", idempotency_key="k"))
    assert created and note.id == 2
    assert ledger.get_prediction(1) is not None
    assert ledger.submit(NewJob(source="api", idempotency_key="k"))[0].id == 1
    ledger.close()
