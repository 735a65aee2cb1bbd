"""The in-memory ledger's console-session revocations (a mixin of
:class:`~imagematch.ledger.memory.MemoryLedger`, kept apart so that file stays within its size)."""

from __future__ import annotations

import threading
from datetime import datetime

from imagematch.ledger.base import Clock

__all__ = ["MemorySessionRevocations"]


class MemorySessionRevocations:
    """``revoke_session`` / ``session_revoked``, each revocation kept until its session would expire."""

    _clock: Clock
    _lock: threading.RLock
    _revoked_sessions: dict[str, datetime]  # session id → when it would expire

    def revoke_session(self, session_id: str, *, expires_at: datetime) -> None:
        with self._lock:
            now = self._clock()
            self._revoked_sessions = {s: t for s, t in self._revoked_sessions.items() if t >= now}
            self._revoked_sessions.setdefault(session_id, expires_at)

    def session_revoked(self, session_id: str) -> bool:
        with self._lock:
            expires_at = self._revoked_sessions.get(session_id)
            return expires_at is not None and expires_at >= self._clock()
