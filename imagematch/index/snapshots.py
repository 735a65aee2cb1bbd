"""Versioned snapshot directories with an atomically replaced pointer.

Snapshots live in ``<root>/v000123/`` directories; ``<root>/CURRENT`` names the live one and is
replaced atomically, so a reader sees the old snapshot or the new one, never half of one. A snapshot
directory is never written to after it is published. Live catalog events applied since are in the
:class:`~imagematch.index.change_log.ChangeLog` under the same root.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.index.change_log import ChangeLog
from imagematch.index.event_order import EventOrder
from imagematch.index.product_index import ProductIndex
from imagematch.index.publish_lock import PublishLock, new_holder_id
from imagematch.index.snapshot_files import read_snapshot_event_order, read_snapshot_model

__all__ = ["POINTER_NAME", "SnapshotStore"]

_VERSION_RE = re.compile(r"^v(\d{6,})$")
POINTER_NAME = "CURRENT"


class SnapshotStore:
    """Versioned snapshot directories under ``root`` with an atomically replaced pointer, plus the
    :class:`ChangeLog` of live catalog events applied on top of the current one."""

    def __init__(self, root: Path, *, keep: int = 5, lock: PublishLock | None = None) -> None:
        self.root = root
        self.keep = keep
        self.lock = lock or PublishLock(root)
        self._holder = new_holder_id()
        self._held = 0  # how deep this store holds the lock (publishing() nests)
        self._held_guard = threading.RLock()

    @contextmanager
    def publishing(self, *, ttl_seconds: float = 600.0, wait_seconds: float = 60.0) -> Iterator[None]:
        """Hold the publish lock (see :mod:`~imagematch.index.publish_lock`) for a block that
        publishes or moves CURRENT; nests. Raises PublishBusyError when another writer holds it
        past ``wait_seconds``. :meth:`publish` and :meth:`point_at` take it by themselves; a
        caller whose lock must be seen elsewhere first (a Volume commit) takes it earlier."""
        with self._held_guard:
            if not self._held:
                self.lock.acquire(self._holder, ttl_seconds=ttl_seconds, wait_seconds=wait_seconds)
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
                if not self._held:
                    self.lock.release(self._holder)

    def changes(self, embedder_id: str) -> ChangeLog:
        """The log of live catalog events applied to ``embedder_id``'s snapshots."""
        return ChangeLog(self.root, embedder_id)

    @property
    def pointer(self) -> Path:
        return self.root / POINTER_NAME

    def current_version(self) -> str | None:
        try:
            return self.pointer.read_text().strip() or None
        except FileNotFoundError:
            return None

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        found = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(found, key=lambda name: int(name[1:]))

    def publish(self, index: ProductIndex, *, point: bool = True) -> str:
        """Write ``index`` as a new version, point CURRENT at it (unless ``point`` is false: a
        candidate, see :meth:`point_at`), prune old ones; returns the version.

        The files are written to a temporary directory first and renamed into place, so a crash
        leaves either no new version or a complete one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self.publishing():
            version = self._write_version(index)
            if point:
                self.point_at(version, folded=index)
        return version

    def _write_version(self, index: ProductIndex) -> str:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            while True:
                existing = self.versions()
                version = f"v{(int(existing[-1][1:]) + 1) if existing else 1:06d}"
                index.version = version
                index.write_to(staging)
                try:
                    staging.rename(self.root / version)  # fails if another writer took the name
                    break
                except OSError:
                    continue
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return version

    def point_at(self, version: str, *, folded: ProductIndex | None = None) -> None:
        """Serve ``version`` from now on (atomic); prune old versions. ``folded``: the index just
        written there, whose applied change-log entries are folded into it and can go."""
        with self.publishing():
            tmp = self.root / f".{POINTER_NAME}.{os.getpid()}.tmp"
            tmp.write_text(version + "\n")
            os.replace(tmp, self.pointer)
            self._prune()
            if folded is not None:
                self.changes(folded.embedder_id).discard(folded.applied_changes)

    def current_model(self) -> str | None:
        """The model spec (``IMAGEMATCH_MODEL``) the CURRENT snapshot was built with, if recorded."""
        version = self.current_version()
        if version is None or not (self.root / version / "meta.json").exists():
            return None
        return read_snapshot_model(self.root / version)

    def event_order(self, embedder_id: str, *, folding: Iterable[int] = ()) -> EventOrder:
        """The catalog event order of the CURRENT snapshot with the change-log entries ``folding``
        recorded on top: where a rebuild that folds those entries in continues from (see
        :meth:`ProductIndex.continue_event_order`). Empty when there is no snapshot yet."""
        version = self.current_version()
        order = EventOrder()
        if version is not None and (self.root / version / "meta.json").exists():
            order = read_snapshot_event_order(self.root / version)
        for sequence in sorted(folding):
            change = self.changes(embedder_id).read(sequence)
            if change is not None:  # else folded into a snapshot meanwhile: already in its order
                order.record(change)
        return order

    def load(self, *, embedder_id: str | None, version: str | None = None) -> ProductIndex:
        """Load ``version`` (default: CURRENT) with the change log replayed on top.

        Raises :class:`IndexNotBuiltError` if there is none and :class:`EmbedderMismatchError` if it
        was built by another embedder.
        """
        version = version or self.current_version()
        if version is None or not (self.root / version / "meta.json").exists():
            raise IndexNotBuiltError(
                f"no index snapshot in {self.root}: run `imagematch index build --catalog …` first"
            )
        index = ProductIndex.read_from(self.root / version)
        if embedder_id is not None and index.embedder_id != embedder_id:
            raise EmbedderMismatchError(
                f"snapshot {version} was built with {index.embedder_id!r}, not {embedder_id!r}; "
                "rebuild it with `imagematch index build`"
            )
        self.changes(index.embedder_id).replay(index)
        return index

    def _prune(self) -> None:
        current = self.current_version()
        for old in self.versions()[: -self.keep]:
            if old != current:
                shutil.rmtree(self.root / old, ignore_errors=True)
