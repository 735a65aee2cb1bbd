"""The ledger contract for console-session revocations (issue #26 item 1), on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from imagematch.ledger import Ledger
from imagematch.ledger.memory import MemoryLedger
from tests.conftest import FakeClock
from tests.integration.test_ledger_contract import make_ledger

__all__ = ["make_ledger"]  # the parametrized backend fixture of the contract suite


def test_a_revoked_session_stays_revoked_until_it_would_have_expired(
    make_ledger: Callable[..., Ledger],
) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    assert not ledger.session_revoked("s-1")
    ledger.revoke_session("s-1", expires_at=clock.now + timedelta(hours=12))
    ledger.revoke_session("s-1", expires_at=clock.now + timedelta(hours=12))  # logout twice: fine
    assert ledger.session_revoked("s-1") and not ledger.session_revoked("s-2")
    if not isinstance(ledger, MemoryLedger):  # a second memory:// ledger is another store
        assert make_ledger(clock).session_revoked("s-1")  # another instance (a restart) sees it
    clock.advance(13 * 3600)
    ledger.revoke_session("s-2", expires_at=clock.now + timedelta(hours=1))  # prunes s-1
    assert not ledger.session_revoked("s-1") and ledger.session_revoked("s-2")
