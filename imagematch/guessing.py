"""Token guessing slowed down: failed sign-ins and failed bearer checks, counted per client address.

The first few failures are free (typos); each one after that blocks the address for twice as long
as the last (1 s, 2 s, 4 s … up to 15 minutes), during which its sign-ins and bearer requests get
429 with ``Retry-After`` without being checked (so a blocked address learns nothing). A success
never counts and clears the address; addresses with no failure for an hour are forgotten. The
count is per process: with several instances an address gets a few more tries, never unlimited.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

__all__ = ["GuessLimiter"]


@dataclass
class _Failures:
    count: int
    last_at: float
    blocked_until: float


class GuessLimiter:
    """Failures per address, with exponential backoff past ``free_failures``."""

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_seconds: float = 1.0,
        max_seconds: float = 900.0,
        forget_seconds: float = 3600.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.forget_seconds = forget_seconds
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str, now: datetime) -> int | None:
        """Whole seconds ``address`` must wait before its next try, or None when it may try now."""
        t = now.timestamp()
        with self._lock:
            seen = self._failures.get(address)
            if seen is None or seen.blocked_until <= t:
                return None
            return max(1, int(seen.blocked_until - t + 0.999))

    def failed(self, address: str, now: datetime) -> None:
        """Count one failed attempt from ``address`` (and block it when past the free ones)."""
        t = now.timestamp()
        with self._lock:
            seen = self._failures.pop(address, None)
            if seen is None or t - seen.last_at > self.forget_seconds:
                seen = _Failures(0, t, t)
            seen.count += 1
            seen.last_at = t
            over = seen.count - self.free_failures
            if over > 0:
                delay = min(self.max_seconds, self.base_seconds * 2 ** min(over - 1, 32))
                seen.blocked_until = t + delay
            self._failures[address] = seen  # most recent last: the oldest are dropped first
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """A correct token from ``address``: its failures are forgotten."""
        with self._lock:
            self._failures.pop(address, None)
