"""A SQLite ledger made before observability: opening it adds the jobs' request_id and the outcome
counters, filled from the attempts already recorded (so /metrics starts from the true totals)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from imagematch.ledger import open_ledger
from imagematch.models import ErrorKind, JobStatus, NewJob


def test_an_older_sqlite_ledger_gets_request_ids_and_counters_from_its_attempts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = open_ledger(f"sqlite:///{path}")
    for n in range(3):
        ledger.submit(NewJob(idempotency_key=f"k{n}", source="cli"))
    first, second, _ = ledger.claim("w", limit=3, lease_seconds=60)
    ledger.complete(first.id, "w", None)
    ledger.fail(second.id, "w", error_kind=ErrorKind.PERMANENT, error="nope", retry_at=None)
    ledger.close()
    with sqlite3.connect(path) as conn:  # as the previous version left it
        conn.executescript(
            "DROP TRIGGER image_job_attempts_counted; DROP TABLE image_job_outcomes;"
            "DROP TABLE imagematch_process_metrics; ALTER TABLE image_jobs DROP COLUMN request_id;"
        )

    upgraded = open_ledger(f"sqlite:///{path}")
    counts = {(o.outcome, o.error_kind): o.count for o in upgraded.job_figures().outcomes}
    assert counts == {(JobStatus.COMPLETE, None): 1, (JobStatus.FAILED, ErrorKind.PERMANENT): 1}
    assert upgraded.get_job(first.id).request_id is None  # type: ignore[union-attr]
    job, _ = upgraded.submit(NewJob(idempotency_key="new", request_id="r-1"))
    assert job.request_id == "r-1"
    upgraded.close()
