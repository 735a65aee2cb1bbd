"""One thread per worker that renews the leases of all the batches it holds.

A thread per batch (started when the batch is claimed, joined when it ends) cost two thread
hand-overs and a start per batch — ~10 % of the GIL a busy worker holds (py-spy, the ceiling
bench) — for renewals that are due once every third of a lease (40 s by default) while a batch
takes milliseconds. Here a batch's lease is added to a schedule and removed from it: no thread
wakes for either. The thread starts with the first lease and ends once it finds none left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["LeaseRenewer", "RenewedLease"]


class RenewedLease(Protocol):
    def renew_step(self) -> float | None:
        """Renew once (or retry); seconds until the next step, ``None`` once there is none."""
        ...

    def halt(self) -> None:
        """No step after this returns (one in flight is waited for)."""
        ...


class LeaseRenewer:
    """Runs each added lease's :meth:`RenewedLease.renew_step` when due, on one thread."""

    def __init__(self, *, name: str = "leases", clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        self._changed = threading.Condition()
        self._due: dict[RenewedLease, float] = {}  # lease → when its next step is due
        self._thread: threading.Thread | None = None

    def add(self, lease: RenewedLease, first_in: float) -> None:
        """Schedule ``lease``'s first step ``first_in`` seconds from now."""
        with self._changed:
            due = self._clock() + first_in
            earliest = min(self._due.values(), default=None)
            self._due[lease] = due
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif earliest is None or due < earliest:  # the thread sleeps past it: wake it
                self._changed.notify()

    def remove(self, lease: RenewedLease) -> None:
        """Take ``lease`` off the schedule; once this returns no step of it runs."""
        with self._changed:
            self._due.pop(lease, None)
        lease.halt()

    def _run(self) -> None:
        try:
            while (lease := self._next_due()) is not None:
                delay = lease.renew_step()
                with self._changed:
                    if lease in self._due:
                        if delay is None:
                            del self._due[lease]
                        else:
                            self._due[lease] = self._clock() + delay
        finally:  # a step raised (a bug): the next add starts a new thread
            with self._changed:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _next_due(self) -> RenewedLease | None:
        """Wait for the lease due first; ``None`` (the thread ends) once none is held."""
        with self._changed:
            while True:
                if not self._due:
                    self._thread = None
                    return None
                lease, due = min(self._due.items(), key=lambda item: item[1])
                wait = due - self._clock()
                if wait <= 0:
                    return lease
                self._changed.wait(wait)
