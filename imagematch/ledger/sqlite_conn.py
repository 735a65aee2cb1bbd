"""Connections of the SQLite ledger: one writer with group commit, one reader per thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from imagematch.errors import TransientError
from imagematch.ledger.group_commit import GroupCommit, Pending

__all__ = ["SqliteWriter", "open_connection"]


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


class SqliteWriter(GroupCommit[sqlite3.Connection]):
    """Every write of this process, on one connection, in shared ``BEGIN IMMEDIATE`` transactions
    (SQLite's write lock taken up front; other processes wait for it up to the busy timeout)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        super().__init__()
        self._connect = connect
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def commit(self, batch: list[Pending[sqlite3.Connection]]) -> None:
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

    @staticmethod
    def _apply(conn: sqlite3.Connection, item: Pending[sqlite3.Connection]) -> None:
        conn.execute("SAVEPOINT write")
        try:
            item.result = item.write(conn)
        except sqlite3.OperationalError:
            raise  # the transaction is in doubt: fail the whole batch
        except Exception as exc:
            conn.execute("ROLLBACK TO write")
            item.error = exc
        conn.execute("RELEASE write")
