"""The Postgres ledger at size: every hot statement uses an index (EXPLAIN on 60k realistic jobs),
and finished jobs can be archived without losing their predictions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imagematch.ledger.postgres import PostgresLedger
from imagematch.models import Match, NewJob, NewPrediction

pytestmark = pytest.mark.postgres

HOT_QUERIES = Path(__file__).with_name("ledger_hot_queries.sql")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def hot_queries() -> dict[str, str]:
    parts = re.split(r"^-- name: (\w+)\s*$", HOT_QUERIES.read_text(), flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.fixture(scope="module")
def filled(postgres_server: object) -> str:
    """One database for the module's EXPLAINs, filled once."""
    import psycopg

    admin = postgres_server.get_uri("postgres")  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop database if exists ledger_scale")
        conn.execute("create database ledger_scale")
    url = str(postgres_server.get_uri("ledger_scale"))  # type: ignore[attr-defined]
    ledger = PostgresLedger(url)
    ledger.migrate()
    ledger.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(hot_queries()["fill_jobs"].encode(), {"n": 60_000, "now": NOW})
        conn.execute("analyze image_jobs")
    return url


@pytest.mark.parametrize(
    "name",
    [
        "claim",
        "sweep_retries_due",
        "sweep_expired_leases",
        "list_failed",
        "list_by_source",
        "list_newest",
        "job_by_key",
        "count_catalog_jobs",
        "prediction_by_job",
    ],
)
def test_hot_statement_uses_an_index(filled: str, name: str) -> None:
    import psycopg

    with psycopg.connect(filled) as conn:
        plan = "\n".join(
            row[0] for row in conn.execute(f"explain {hot_queries()[name]}".encode(), {"now": NOW})
        )
    assert "Seq Scan on image_jobs" not in plan, plan
    assert "Index" in plan, plan


def test_archive_moves_old_finished_jobs_and_keeps_their_predictions(postgres_url: str) -> None:
    clock = [NOW - timedelta(days=400)]
    ledger = PostgresLedger(postgres_url, clock=lambda: clock[0])
    ledger.migrate()
    old, _ = ledger.submit(NewJob(idempotency_key="old", payload={"image": "blob:a"}))
    [claimed] = ledger.claim("w", limit=1, lease_seconds=60)
    prediction = NewPrediction(
        matches=[Match(product_id="P", name="P", score=0.9, image_id="i")],
        embedder_id="tiny",
        index_version="v1",
        latency_ms=1.0,
    )
    assert ledger.complete(claimed.id, "w", prediction)
    clock[0] = NOW
    recent, _ = ledger.submit(NewJob(idempotency_key="recent", payload={"image": "blob:b"}))

    assert ledger.archive_finished_jobs(finished_before=NOW - timedelta(days=365)) == 1
    assert ledger.archive_finished_jobs(finished_before=NOW - timedelta(days=365)) == 0  # batches end
    assert ledger.get_job(old.id) is None and ledger.get_job(recent.id) is not None
    kept = ledger.get_prediction(old.id)
    assert kept is not None and kept.best_product_id == "P"
    ledger.close()


@pytest.mark.parametrize(
    "name",
    [
        "job_by_id",
        "job_by_key",
        "list_jobs",
        "list_jobs_by_status",
        "list_jobs_by_source",
        "list_jobs_by_source_and_status",
    ],
)
def test_the_ledgers_own_reads_use_an_index(filled: str, name: str) -> None:
    """The statements PostgresLedger runs (ledger/sql/postgres.sql), not only their stand-ins above."""
    import psycopg

    from imagematch.ledger.postgres import Q

    params = {"id": 4242, "idempotency_key": "fill:4242", "status": "failed", "source": "zendesk"}
    with psycopg.connect(filled) as conn:
        rows = conn.execute(f"explain {Q[name]}".encode(), {**params, "before_id": 2**63 - 1, "limit": 50})
        plan = "\n".join(row[0] for row in rows)
    assert "Seq Scan on image_jobs" not in plan, plan
    assert "Index" in plan, plan
