"""A shared Volume's reload and commit, guarded for containers with concurrent inputs.

Modal's documented rules (``modal.Volume``): a container sees other containers' writes only after
they ``commit()`` *and* it ``reload()``s; commits are last-write-wins per file; ``reload()`` fails
while the process holds a file on the Volume open, and so can ``commit()``, which reloads after
committing. In a container serving several inputs at once one input's reload can meet another's
open upload. So here reloads and commits run under one lock, and a failure is logged and retried
later — never a failed job or a 500. The Volume itself is passed in (``modal.Volume`` on Modal,
``None`` locally: then every call is a no-op); this module never imports ``modal``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["SharedVolume", "VolumeSync"]

log = logging.getLogger(__name__)


class SharedVolume(Protocol):
    """What this code needs of a mounted ``modal.Volume``."""

    def reload(self) -> None: ...

    def commit(self) -> None: ...


class VolumeSync:
    """Reload and commit one mounted Volume, one at a time, never raising.

    ``commit_attempts``: how many times a commit is tried before it is left for :meth:`flush` (a
    failed commit leaves this container's writes invisible to the others until one succeeds).
    ``monotonic`` and ``wait`` are injected by tests.
    """

    def __init__(
        self,
        volume: SharedVolume | None,
        *,
        commit_attempts: int = 3,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.volume = volume
        self._commit_attempts = commit_attempts
        self._monotonic = monotonic
        self._wait = wait
        self._lock = threading.Lock()
        self._reloaded_at = float("-inf")
        self.unflushed = False  # a commit failed: writes wait for the next flush
        self.failures = 0  # reloads and commits that failed so far (logged)
        self.reloads = 0  # successful reloads (commits included: a commit reloads too)

    def reload(self, *, max_age: float = 0.0) -> bool:
        """See what other containers committed, unless the last successful reload is younger
        than ``max_age`` seconds. Returns whether the mount is that fresh now; a failure is
        logged and the next call tries again."""
        if self.volume is None:
            return True
        with self._lock:
            if self._monotonic() - self._reloaded_at < max_age:
                return True
            try:
                self.volume.reload()
            except Exception as exc:
                self.failures += 1
                log.warning("volume reload failed, will retry: %s", exc)
                return False
            self._reloaded_at = self._monotonic()
            self.reloads += 1
            return True

    def commit(self) -> bool:
        """Make this container's writes visible to the others (they still need to reload).
        Tries ``commit_attempts`` times; returns whether it succeeded."""
        if self.volume is None:
            return True
        with self._lock:
            for attempt in range(1, self._commit_attempts + 1):
                try:
                    self.volume.commit()
                except Exception as exc:
                    self.failures += 1
                    log.warning("volume commit failed (attempt %d): %s", attempt, exc)
                    if attempt < self._commit_attempts:
                        self._wait(0.05 * 2**attempt)
                    continue
                self.unflushed = False
                self._reloaded_at = self._monotonic()  # a commit reloads too
                self.reloads += 1
                return True
            self.unflushed = True
            return False

    def flush(self) -> bool:
        """Retry a commit that failed earlier; True when nothing is left unflushed."""
        return self.commit() if self.unflushed else True

    def keep_fresh(self, every_seconds: float, stop: threading.Event | None = None) -> threading.Thread:
        """Start a daemon thread that flushes and reloads every ``every_seconds`` (a web container
        lives for hours; its view of the Volume is only as new as its last reload)."""
        stop = stop or threading.Event()

        def loop() -> None:
            while not stop.wait(every_seconds):
                self.flush()
                self.reload()

        thread = threading.Thread(target=loop, name="volume-sync", daemon=True)
        thread.start()
        return thread
