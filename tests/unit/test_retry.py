from __future__ import annotations

from datetime import UTC, datetime, timedelta

from imagematch.errors import PermanentError, TransientError
from imagematch.models import ErrorKind
from imagematch.retry import RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=10, cap_seconds=60, jitter=lambda: 1.0)
    delays = [
        (policy.decide(attempts=n, error=TransientError("x"), now=NOW).retry_at - NOW).total_seconds()  # type: ignore[operator]
        for n in range(1, 6)
    ]
    assert delays == [10, 20, 40, 60, 60]
    low = RetryPolicy(base_seconds=10, jitter=lambda: 0.0).decide(
        attempts=1, error=TransientError("x"), now=NOW
    )
    assert low.retry_at == NOW + timedelta(seconds=5)


def test_permanent_gives_up_at_once() -> None:
    decision = RetryPolicy().decide(attempts=1, error=PermanentError("not an image"), now=NOW)
    assert decision.give_up and decision.error_kind == ErrorKind.PERMANENT


def test_unknown_errors_are_transient_until_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert not policy.decide(attempts=2, error=KeyError("bug"), now=NOW).give_up
    last = policy.decide(attempts=3, error=KeyError("bug"), now=NOW)
    assert last.give_up and last.error_kind == ErrorKind.TRANSIENT


def test_retry_after_is_honoured() -> None:
    policy = RetryPolicy(base_seconds=1, jitter=lambda: 1.0)
    decision = policy.decide(attempts=1, error=TransientError("429", retry_after=120), now=NOW)
    assert decision.retry_at == NOW + timedelta(seconds=120)
