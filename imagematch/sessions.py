"""Console sessions: a signed cookie with a random id and an issued-at time, checked on the server.

The cookie holds ``<token name>.<session id>.<issued at, unix s>.<HMAC-SHA256 under the token>``:
never the token itself. It is accepted while its token is configured (removing a token ends its
sessions), its signature is right (the issued-at time cannot be moved), it is younger than
``IMAGEMATCH_SESSION_HOURS`` on the server's clock (whatever the browser keeps), and it was not
revoked by logout (a revocation list in the ledger: every instance sees it, a restart keeps it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

__all__ = ["ConsoleSession", "SessionRevocations", "SessionToken", "issue_session", "read_session"]

_LABEL = b"imagematch-console-session-v2"
MAX_CLOCK_SKEW_SECONDS = 300  # a session issued by an instance whose clock runs a little ahead


class SessionToken(Protocol):
    """What a session is signed under: a configured API token."""

    @property
    def name(self) -> str: ...

    @property
    def secret(self) -> str: ...


class SessionRevocations(Protocol):
    """Where logouts are recorded (the ledger)."""

    def revoke_session(self, session_id: str, *, expires_at: datetime) -> None: ...

    def session_revoked(self, session_id: str) -> bool: ...


T = TypeVar("T", bound=SessionToken)


@dataclass(frozen=True)
class ConsoleSession:
    token_name: str
    session_id: str
    issued_at: int  # unix seconds

    def expires_at(self, max_age_seconds: float) -> datetime:
        return datetime.fromtimestamp(self.issued_at + max_age_seconds, UTC)


def _mac(secret: str, name: str, session_id: str, issued_at: int) -> str:
    message = b"|".join([_LABEL, name.encode(), session_id.encode(), str(issued_at).encode()])
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def issue_session(token: SessionToken, now: datetime) -> tuple[str, ConsoleSession]:
    """A new session for ``token`` (a fresh random id at every login) and its cookie value."""
    session = ConsoleSession(token.name, secrets.token_urlsafe(18), int(now.timestamp()))
    mac = _mac(token.secret, token.name, session.session_id, session.issued_at)
    return f"{token.name}.{session.session_id}.{session.issued_at}.{mac}", session


def read_session(
    value: str, tokens: list[T], *, now: datetime, max_age_seconds: float
) -> tuple[T, ConsoleSession] | None:
    """The token and session ``value`` stands for, or None when it is malformed, signed by no
    configured token, issued in the future or older than ``max_age_seconds``. (Revocation is
    the caller's check: it needs the ledger.) Every token's MAC is compared in constant time."""
    parts = value.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    name, session_id, issued, presented = parts
    issued_at = int(issued)
    age = now.timestamp() - issued_at
    if not (-MAX_CLOCK_SKEW_SECONDS <= age < max_age_seconds):
        return None
    found = None
    for token in tokens:
        expected = _mac(token.secret, token.name, session_id, issued_at)
        if hmac.compare_digest(presented.encode(), expected.encode()) and token.name == name:
            found = token
    return (found, ConsoleSession(name, session_id, issued_at)) if found is not None else None
