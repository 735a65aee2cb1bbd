"""Postgres: a batch of submits is one ``imagematch_submit_many`` statement, and each submit in it
gets exactly what it would get alone — duplicates within the batch and across batches included —
while one bad submit fails alone and the rest of its batch is stored."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from imagematch.ledger import open_ledger
from imagematch.ledger.postgres import PostgresLedger
from imagematch.sources.zendesk.jobs import ticket_job

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _item(n: int, kind: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    now = T0 + timedelta(seconds=n)
    return {"kind": kind, "source": "test", "key": key, "payload": payload, "metadata": {}, "now": now}


# Two batches, in order: repeated keys within the first, keys of the first again in the second,
# the same key under two kinds, and an item whose key is new in the second.
BATCHES = [
    [
        _item(1, "a", "k1", {"n": 1}),
        _item(2, "a", "k2", {"n": 2}),
        _item(3, "a", "k1", {"n": 3}),  # k1 again: not created, the first k1's job
        _item(4, "b", "k1", {"n": 4}),  # same key, other kind: a job of its own
        _item(5, "a", "k1", {"n": 5}),
    ],
    [
        _item(6, "a", "k2", {"n": 6}),  # created by the first batch
        _item(7, "a", "k3", {"n": 7}),
        _item(8, "a", "k3", {"n": 8}),
    ],
]


def _outcome(result: dict[str, Any]) -> tuple[bool, str, str, Any, str, str]:
    job = result["job"]
    return (
        result["created"],
        job["kind"],
        job["idempotency_key"],
        job["payload"],
        job["created_at"],
        job["status"],
    )


def test_a_batch_answers_each_submit_as_one_by_one_calls_would(postgres_url: str) -> None:
    open_ledger(postgres_url).close()  # migrate
    with psycopg.connect(postgres_url, row_factory=dict_row) as conn:
        together = []
        for batch in BATCHES:
            items = [{**i, "key": f"many-{i['key']}", "now": i["now"].isoformat()} for i in batch]
            [row] = conn.execute("select imagematch_submit_many(%s) as r", (Jsonb(items),)).fetchall()
            together += row["r"]
        alone = [
            conn.execute(
                "select imagematch_submit(%s, %s, %s, %s, %s, %s) as r",
                (i["kind"], i["source"], f"one-{i['key']}", Jsonb(i["payload"]), Jsonb({}), i["now"]),
            ).fetchone()["r"]  # type: ignore[index]
            for batch in BATCHES
            for i in batch
        ]
        stored = conn.execute("select count(*) as n from image_jobs where idempotency_key like 'many-%'")
        assert stored.fetchone() == {"n": 4}

    strip = [(c, k, key.split("-", 1)[1], p, at, s) for c, k, key, p, at, s in map(_outcome, together)]
    assert strip == [(c, k, key.split("-", 1)[1], p, at, s) for c, k, key, p, at, s in map(_outcome, alone)]
    assert [c for c, *_ in strip] == [True, True, False, True, False, False, True, False]
    ids = [r["job"]["id"] for r in together]
    assert ids[0] == ids[2] == ids[4] and ids[1] == ids[5] and ids[6] == ids[7] and ids[3] != ids[0]


_LOCK_WAITS = (
    "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
)


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _hold_key_then_submit_in_one_batch(ledger: PostgresLedger, url: str, jobs: list[Any]) -> list[Any]:
    """Submit ``jobs`` from concurrent threads so that they share one batch: another connection
    holds the first job's key (uncommitted), so the first submit's batch waits on it while the rest
    queue up; then that connection rolls back. Returns each job's outcome (or its error)."""
    outcomes: list[Any] = [None] * len(jobs)

    def submit(n: int) -> None:
        try:
            outcomes[n] = ledger.submit(jobs[n])
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(len(jobs))]
    # pg_stat_activity is read once per transaction: the watcher asks in a new one each time.
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as watcher:
        first = jobs[0]
        blocker.execute(
            "select imagematch_submit(%s, 'test', %s, '{}', '{}', now())", (first.kind, first.idempotency_key)
        )
        threads[0].start()  # its batch waits for the blocker's row lock...
        _wait_for(lambda: watcher.execute(_LOCK_WAITS).fetchone() == (1,))
        for t in threads[1:]:
            t.start()  # ...while every other submit queues up behind it
        _wait_for(lambda: len(ledger._writer._queue) == len(jobs) - 1)
        blocker.rollback()
    for t in threads:
        t.join(60)
    return outcomes


def test_concurrent_deliveries_in_one_batch_store_each_ticket_once(postgres_url: str) -> None:
    ledger = open_ledger(postgres_url)
    assert isinstance(ledger, PostgresLedger)
    ledger.submit(ticket_job("7", "event-1"))  # an earlier batch took ticket 7
    jobs = [ticket_job(str(n % 6), "event-1") for n in range(12)] + [ticket_job("7", "event-1")]
    outcomes = _hold_key_then_submit_in_one_batch(ledger, postgres_url, jobs)
    created = [c for _, c in outcomes]
    assert sum(created) == 6 and created[-1] is False
    by_ticket: dict[str, set[int]] = {}
    for job, _ in outcomes:
        by_ticket.setdefault(job.payload["ticket_id"], set()).add(job.id)
    assert all(len(ids) == 1 for ids in by_ticket.values()) and len(by_ticket) == 7
    assert len(ledger.list_jobs(limit=100)) == 7
    ledger.close()


def test_one_bad_submit_fails_alone_and_the_rest_of_its_batch_is_stored(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = open_ledger(postgres_url)
    assert isinstance(ledger, PostgresLedger)
    jobs = [ticket_job(str(n), "event-1") for n in range(8)]
    jobs[4] = ticket_job("4", "event-1", metadata={"note": "nul \x00 byte"})  # Postgres refuses it
    with caplog.at_level(logging.WARNING, logger="imagematch.ledger.postgres"):
        outcomes = _hold_key_then_submit_in_one_batch(ledger, postgres_url, jobs)
    assert isinstance(outcomes[4], psycopg.DataError)
    assert [outcome[1] for n, outcome in enumerate(outcomes) if n != 4] == [True] * 7
    stored = sorted(int(j.payload["ticket_id"]) for j in ledger.list_jobs(limit=100))
    assert stored == [0, 1, 2, 3, 5, 6, 7]
    assert "submitting them one by one" in caplog.text  # they did share a batch
    ledger.close()
