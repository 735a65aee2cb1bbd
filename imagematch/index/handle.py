"""The index a process serves, kept current with the snapshots and the change log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from imagematch.index.product_index import ProductIndex
from imagematch.index.snapshots import SnapshotStore

__all__ = ["IndexHandle"]


class IndexHandle:
    """The index a process serves: loaded lazily, reloaded when the CURRENT pointer moves, and
    brought up to date with live catalog changes other processes logged.

    The pointer and the change log are checked at most every ``check_seconds``; a reload happens
    off to the side and swaps in whole, so searches never wait for (or see half of) a rebuild.
    ``embedder_id`` ``None``: a process without the model, which only reads the index (stats).
    """

    def __init__(
        self,
        store: SnapshotStore,
        embedder_id: str | None,
        *,
        check_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.embedder_id = embedder_id
        self._check_seconds = check_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._index: ProductIndex | None = None
        self._checked_at = float("-inf")

    def get(self) -> ProductIndex:
        """The current index. Raises IndexNotBuiltError / EmbedderMismatchError (see load)."""
        if self._index is None or self._monotonic() - self._checked_at >= self._check_seconds:
            self.refresh()
        assert self._index is not None
        return self._index

    def refresh(self) -> bool:
        """Reload if the pointer names another version, else replay new change-log entries;
        returns whether the served index changed."""
        with self._lock:
            self._checked_at = self._monotonic()
            version = self.store.current_version()
            if self._index is not None and version == self._index.version:
                return self.store.changes.replay(self._index) > 0
            self._index = self.store.load(embedder_id=self.embedder_id, version=version)
            return True

    def replace(self, index: ProductIndex) -> None:
        """Serve ``index`` now (e.g. right after publishing it)."""
        with self._lock:
            self._index = index
            self._checked_at = self._monotonic()
