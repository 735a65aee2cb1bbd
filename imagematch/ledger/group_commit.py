"""Group commit: writes from many threads share transactions, so a burst costs one commit (one
fsync) per batch instead of one per write, and nobody waits in a lock's retry loop.

Why: a burst of webhooks used to make each request commit alone; with SQLite they raced for the
single write lock and the losers slept in SQLite's busy handler (1, 2, 5 … 100 ms naps), which made
a 2,000-delivery burst's p99 ~10× a bare insert's (``bench/webhook_burst.py``). Durability is
unchanged: a caller gets its result only after the transaction holding its write has committed.

One thread at a time leads: it commits everything queued (its own write included), wakes the
callers whose writes it committed, and hands the lead to the oldest write still queued — each
waiting thread is woken once. The backend's :meth:`GroupCommit.commit` runs each write in its own
savepoint: a write that raises has only its own changes undone and gets its error back. When the
transaction itself fails (locked past the busy timeout, connection lost, disk error) every caller
in the batch gets :class:`TransientError` and nothing of the batch is kept.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from imagematch.errors import TransientError

__all__ = ["GroupCommit", "Pending"]

C = TypeVar("C")  # the backend's connection
T = TypeVar("T")
MAX_BATCH = 256  # writes per transaction


@dataclass
class Pending(Generic[C]):
    """One queued write; the committer sets ``result`` or ``error``."""

    write: Callable[[C], Any]
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit(ABC, Generic[C]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Pending[C]] = []
        self._leading = False

    @abstractmethod
    def commit(self, batch: list[Pending[C]]) -> None:
        """Run every write of ``batch`` in one transaction (each in a savepoint) and commit it;
        set each item's ``result`` or ``error``. Only ``BaseException`` beyond ``Exception`` may
        escape (then nothing is committed)."""

    def run(self, write: Callable[[C], T]) -> T:
        """``write(connection)``'s result, once the transaction holding it is committed."""
        pending: Pending[C] = Pending(write)
        with self._lock:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.wake.wait()
        if not pending.done:  # this thread leads: commit what is queued, its own write included
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                self.commit(batch)
                for item in batch:
                    item.done = True
            finally:
                self._hand_over(batch)
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[no-any-return]

    def _hand_over(self, batch: list[Pending[C]]) -> None:
        for item in batch:
            if not item.done:  # interrupted (KeyboardInterrupt…): nothing was committed
                item.result, item.error, item.done = None, TransientError("ledger write interrupted"), True
            item.wake.set()
        with self._lock:
            if self._queue:
                self._queue[0].wake.set()  # woken before its write is done: it leads next
            else:
                self._leading = False
