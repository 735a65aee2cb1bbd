"""One writer of snapshots and of CURRENT at a time: a lock file naming its holder and its expiry.

Two builds publishing at once could both take the next version's name and, on a shared Volume
whose commits are last-write-wins per file, mix their files, or move CURRENT back. The lock file
``<root>/PUBLISHING`` is created exclusively; a second writer waits for it (up to a limit) and
then gives up with :class:`PublishBusyError`. A holder that died leaves a lock that expires.

On Modal a lock file is only seen by other containers once committed: the deployed ``reindex``
reloads, takes the lock, commits, and only then builds (see :mod:`imagematch.deploy.builds`).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagematch.errors import TransientError

__all__ = ["LOCK_NAME", "PublishBusyError", "PublishLock", "new_holder_id"]

LOCK_NAME = "PUBLISHING"
UNREADABLE_GRACE_SECONDS = 60.0  # a lock file with no readable body younger than this is held


class PublishBusyError(TransientError):
    """Another writer is publishing snapshots under the same root; try again later."""


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PublishLock:
    """The lock file of one snapshot root. ``clock`` is wall time (holders on several machines
    compare expiries); ``wait`` sleeps between checks (injected in tests)."""

    def __init__(
        self,
        root: Path,
        *,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = root / LOCK_NAME
        self._clock = clock
        self._wait = wait

    def holder(self) -> tuple[str, float] | None:
        """``(holder, expires_at)`` of the lock now, or ``None`` when nobody holds it."""
        try:
            data = json.loads(self.path.read_text())
            return str(data["holder"]), float(data["expires_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def acquire(self, holder: str, *, ttl_seconds: float, wait_seconds: float = 0.0) -> None:
        """Hold the lock for ``ttl_seconds``. Waits up to ``wait_seconds`` for another holder,
        then raises :class:`PublishBusyError` naming it. An expired lock is taken over."""
        deadline = self._clock() + wait_seconds
        while True:
            if self._try_acquire(holder, ttl_seconds):
                return
            current = self.holder()
            if self._clock() >= deadline:
                who = current[0] if current else "another writer"
                raise PublishBusyError(f"{who} is publishing snapshots in {self.path.parent}; try later")
            self._wait(min(1.0, max(0.01, deadline - self._clock())))

    def release(self, holder: str) -> None:
        """Give the lock up, if ``holder`` still holds it."""
        current = self.holder()
        if current is not None and current[0] == holder:
            self.path.unlink(missing_ok=True)

    @contextmanager
    def holding(self, holder: str, *, ttl_seconds: float, wait_seconds: float = 0.0) -> Iterator[None]:
        self.acquire(holder, ttl_seconds=ttl_seconds, wait_seconds=wait_seconds)
        try:
            yield
        finally:
            self.release(holder)

    def _try_acquire(self, holder: str, ttl_seconds: float) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"holder": holder, "expires_at": self._clock() + ttl_seconds})
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            current = self.holder()
            if current is None and self._age() < UNREADABLE_GRACE_SECONDS:
                return False  # just created, its body not written yet
            if current is not None and current[0] != holder and current[1] > self._clock():
                return False
            # Expired, unreadable (a writer died mid-write) or ours: take it over, then check that
            # no other writer replaced it at the same moment.
            tmp = self.path.with_name(f".{LOCK_NAME}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(body)
            os.replace(tmp, self.path)
            taken = self.holder()
            return taken is not None and taken[0] == holder
        with os.fdopen(fd, "w") as file:
            file.write(body)
        return True

    def _age(self) -> float:
        try:
            return self._clock() - self.path.stat().st_mtime
        except OSError:
            return float("inf")
