"""The index a process serves, kept current with the snapshots and the change log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from imagematch.errors import EmbedderMismatchError
from imagematch.index.product_index import ProductIndex
from imagematch.index.snapshots import SnapshotStore

__all__ = ["IndexHandle"]

log = logging.getLogger(__name__)


class IndexHandle:
    """The index a process serves: loaded lazily, reloaded when the CURRENT pointer moves, and
    brought up to date with live catalog changes other processes logged.

    The pointer and the change log are checked at most every ``check_seconds``; a reload happens
    off to the side and swaps in whole, so searches never wait for (or see half of) a rebuild.
    ``embedder_id`` ``None``: a process without the model, which only reads the index (stats).

    When CURRENT moves to a snapshot of another model (a model switch), a process already serving
    keeps its index — still right for the model it holds — and reports the switch in
    ``waiting_for_model``; processes started from then on load the new model (see
    :func:`imagematch.app.serving_model`).
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
        self.waiting_for_model: str | None = None  # CURRENT's version, built by another model

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
            if self._index is not None and version in (self._index.version, self.waiting_for_model):
                return self.store.changes(self._index.embedder_id).replay(self._index) > 0
            try:
                self._index = self.store.load(embedder_id=self.embedder_id, version=version)
            except EmbedderMismatchError:
                if self._index is None:
                    raise
                log.warning(
                    "snapshot %s needs another model: serving %s until restarted",
                    version,
                    self._index.version,
                )
                self.waiting_for_model = version
                return False
            self.waiting_for_model = None
            return True

    def replace(self, index: ProductIndex) -> None:
        """Serve ``index`` now (e.g. right after publishing it)."""
        with self._lock:
            self._index = index
            self._checked_at = self._monotonic()
