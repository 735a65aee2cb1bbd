"""Connections of the SQLite ledger: one writer with group commit, one reader per thread.

Why: a burst of webhooks used to open a connection per request and race for SQLite's single write
lock; the losers slept in SQLite's busy handler (1, 2, 5 … 100 ms naps), which made a 2,000-delivery
burst's p99 ~10× a bare insert's (``bench/webhook_burst.py``). Now every write of this process goes
through :class:`GroupCommitWriter`: writes queued while one transaction commits all go into the next,
one ``BEGIN IMMEDIATE … COMMIT`` — one WAL fsync with ``synchronous=FULL`` — for the lot. Durability is
unchanged: a caller gets its result only after the transaction holding its write has committed.
Other processes still take turns through the file lock and the busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from imagematch.errors import TransientError

__all__ = ["GroupCommitWriter", "open_connection"]

T = TypeVar("T")
MAX_BATCH = 256  # writes per transaction


def open_connection(path: Path, *, busy_timeout_s: float) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit), usable from any thread that holds it
    alone, with foreign keys on and ``synchronous=FULL``: a commit is on disk when it returns."""
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        raise TransientError(f"cannot open ledger {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


@dataclass
class _Pending(Generic[T]):
    write: Callable[[sqlite3.Connection], T]
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[no-any-return]


class GroupCommitWriter:
    """Runs write functions from many threads on one connection, batched into shared transactions.

    One thread at a time leads: it commits everything queued (its own write included), wakes the
    callers whose writes it committed, and hands the lead to the oldest write still queued — each
    waiting thread is woken once. Each function runs inside its own savepoint: if it raises, only
    its changes are undone and the error goes to its caller. If the transaction itself cannot begin
    or commit (the file is locked by another process past the busy timeout, a disk error), every
    caller in it gets :class:`TransientError` and nothing of the batch is kept.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queue: list[_Pending[Any]] = []
        self._leading = False

    def run(self, write: Callable[[sqlite3.Connection], T]) -> T:
        pending: _Pending[T] = _Pending(write)
        with self._lock:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.wake.wait()
            if pending.done:
                return pending.outcome()
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._commit(batch)
        finally:
            self._hand_over(batch)
        return pending.outcome()

    def _hand_over(self, batch: list[_Pending[Any]]) -> None:
        for item in batch:
            if not item.done:  # interrupted (KeyboardInterrupt…): nothing was committed
                item.error, item.done = TransientError("ledger write interrupted"), True
            item.wake.set()
        with self._lock:
            if self._queue:
                self._queue[0].wake.set()  # woken before its write is done: it leads next
            else:
                self._leading = False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _commit(self, batch: list[_Pending[Any]]) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                self._apply(conn, item)
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # "database is locked", I/O errors: nothing is kept
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item in batch:
                item.result, item.error = None, TransientError(f"ledger busy: {exc}")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        for item in batch:
            item.done = True

    @staticmethod
    def _apply(conn: sqlite3.Connection, item: _Pending[Any]) -> None:
        conn.execute("SAVEPOINT write")
        try:
            item.result = item.write(conn)
        except sqlite3.OperationalError:
            raise  # the transaction is in doubt: fail the whole batch
        except Exception as exc:
            conn.execute("ROLLBACK TO write")
            item.error = exc
        conn.execute("RELEASE write")
