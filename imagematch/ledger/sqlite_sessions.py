"""The SQLite ledger's console-session revocations (a mixin of :class:`SqliteLedger`, kept apart
so that file stays within its size)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from imagematch.ledger.sql import load_queries

__all__ = ["SqliteSessionRevocations"]

Q = load_queries("sqlite")


class SqliteSessionRevocations:
    """``revoke_session`` / ``session_revoked`` over the ``console_session_revocations`` table."""

    _connect: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _write: Callable[[Callable[[sqlite3.Connection], Any]], Any]
    _now: Callable[[], float]

    def revoke_session(self, session_id: str, *, expires_at: datetime) -> None:
        now = self._now()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(Q["prune_session_revocations"], {"now": now})
            until = expires_at.timestamp()
            conn.execute(Q["revoke_session"], {"session_id": session_id, "expires_at": until})

        self._write(write)

    def session_revoked(self, session_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute(Q["session_revoked"], {"session_id": session_id, "now": self._now()})
            return row.fetchone() is not None
