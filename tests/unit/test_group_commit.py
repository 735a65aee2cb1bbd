"""Group commit (SQLite ledger): concurrent writes share transactions, yet each caller gets its own
outcome and every accepted write is stored exactly once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from imagematch.ledger.sqlite import SqliteLedger
from imagematch.sources.zendesk.jobs import ticket_job


def test_a_burst_of_concurrent_deliveries_stores_each_ticket_once(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.migrate()
    created: list[bool] = []

    def deliver(thread: int) -> None:
        for n in range(40):  # each ticket is delivered twice, by different threads
            ticket = str(1 + (thread * 40 + n) % 200)
            created.append(ledger.submit(ticket_job(ticket, "event-1"))[1])

    threads = [threading.Thread(target=deliver, args=(t,)) for t in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(created) == 400 and sum(created) == 200
    jobs = ledger.list_jobs(limit=1000)
    assert sorted(int(j.payload["ticket_id"]) for j in jobs) == list(range(1, 201))
    ledger.close()


def test_a_failing_write_fails_alone(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.migrate()
    start = threading.Barrier(9)
    errors: list[BaseException] = []

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO image_jobs (kind) VALUES ('x')")  # violates NOT NULL

    def submit_bad() -> None:
        start.wait()
        try:
            ledger._write(bad)
        except sqlite3.IntegrityError as exc:
            errors.append(exc)

    def submit_good(n: int) -> None:
        start.wait()
        ledger.submit(ticket_job(str(n), "event-1"))

    threads = [threading.Thread(target=submit_bad)]
    threads += [threading.Thread(target=submit_good, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 1
    assert len(ledger.list_jobs(limit=100)) == 8
    ledger.close()


def test_a_locked_file_is_a_transient_error_and_keeps_nothing(tmp_path: Path) -> None:
    from imagematch.errors import TransientError

    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", busy_timeout_s=0.05)
    ledger.migrate()
    other = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(TransientError):
        ledger.submit(ticket_job("1", "event-1"))
    other.execute("ROLLBACK")
    assert ledger.submit(ticket_job("1", "event-1"))[1] is True
    other.close()
    ledger.close()
