"""RetryPolicy: the one place that decides whether and when a failed job runs again."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from imagematch.errors import PermanentError, TransientError
from imagematch.models import ErrorKind

__all__ = ["RetryDecision", "RetryPolicy"]


@dataclass(frozen=True)
class RetryDecision:
    """``retry_at`` is when to run again; ``None`` means give up for good."""

    error_kind: ErrorKind
    retry_at: datetime | None

    @property
    def give_up(self) -> bool:
        return self.retry_at is None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, a cap, and a maximum number of attempts.

    Delay before attempt n+1 is ``uniform(0.5, 1) * min(cap, base * 2**(n-1))``, or the server's
    ``Retry-After`` if that is longer. :class:`PermanentError` never retries. Any other exception
    (a bug, an unexpected library error) counts as transient until attempts run out.
    """

    max_attempts: int = 5
    base_seconds: float = 10.0
    cap_seconds: float = 3600.0
    jitter: Callable[[], float] = random.random

    def decide(self, *, attempts: int, error: BaseException, now: datetime) -> RetryDecision:
        if isinstance(error, PermanentError):
            return RetryDecision(ErrorKind.PERMANENT, None)
        if attempts >= self.max_attempts:
            return RetryDecision(ErrorKind.TRANSIENT, None)
        delay = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        delay *= 0.5 + 0.5 * self.jitter()
        if isinstance(error, TransientError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.cap_seconds))
        return RetryDecision(ErrorKind.TRANSIENT, now + timedelta(seconds=delay))
