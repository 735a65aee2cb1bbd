"""Job and prediction ledger: one protocol, a backend per store. :func:`open_ledger` picks one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imagematch.config import redact_url
from imagematch.ledger.base import (
    Clock,
    JobAttempt,
    JobFigures,
    JobOutcome,
    Ledger,
    OutcomeCount,
    SweepReport,
    utcnow,
)

if TYPE_CHECKING:
    from imagematch.config import Settings

__all__ = [
    "Clock",
    "JobAttempt",
    "JobFigures",
    "JobOutcome",
    "Ledger",
    "OutcomeCount",
    "SweepReport",
    "open_ledger",
    "open_ledger_for",
    "utcnow",
]


def open_ledger(url: str, *, clock: Clock = utcnow) -> Ledger:
    """Open (and migrate) the ledger at ``url``: ``sqlite:///path``, ``postgresql://…`` or ``memory://``.

    Raises ``ValueError`` for an unsupported URL.
    """
    ledger: Ledger
    if url.startswith("sqlite:///"):
        from imagematch.ledger.sqlite import SqliteLedger

        ledger = SqliteLedger(Path(url.removeprefix("sqlite:///")), clock=clock)
    elif url.startswith(("postgresql://", "postgres://")):
        from imagematch.ledger.postgres import PostgresLedger

        ledger = PostgresLedger(url, clock=clock)
    elif url.startswith("memory://"):
        from imagematch.ledger.memory import MemoryLedger

        ledger = MemoryLedger(clock=clock)
    else:
        raise ValueError(
            f"unsupported ledger URL {redact_url(url)!r}: use sqlite:///path, postgresql://… or memory://"
        )
    ledger.migrate()
    return ledger


def open_ledger_for(settings: Settings, *, clock: Clock = utcnow) -> Ledger:
    """The ledger ``settings`` name: Supabase when ``IMAGEMATCH_SUPABASE_URL`` is set, else
    ``IMAGEMATCH_DATABASE_URL`` (default: SQLite in the data dir)."""
    if settings.supabase_url:
        from imagematch.ledger.supabase import SupabaseLedger

        if settings.supabase_service_key is None:
            raise ValueError("IMAGEMATCH_SUPABASE_URL needs IMAGEMATCH_SUPABASE_SERVICE_KEY too")
        key = settings.supabase_service_key.get_secret_value()
        return SupabaseLedger(settings.supabase_url, key, clock=clock)
    return open_ledger(settings.resolved_database_url(), clock=clock)
