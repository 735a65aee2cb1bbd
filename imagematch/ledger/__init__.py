"""Job and prediction ledger: one protocol, a backend per store. :func:`open_ledger` picks one."""

from __future__ import annotations

from pathlib import Path

from imagematch.ledger.base import Clock, Ledger, SweepReport, utcnow

__all__ = ["Clock", "Ledger", "SweepReport", "open_ledger", "utcnow"]


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
        raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///path, postgresql://… or memory://")
    ledger.migrate()
    return ledger
