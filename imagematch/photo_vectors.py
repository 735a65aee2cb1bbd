"""Stored photo embeddings: every matched photo's vector, kept per embedder, so re-matching an
entity after a catalog change is a search, never a re-embed.

Content-addressed like :class:`~imagematch.blobs.BlobStore`, beside the uploads on the data dir
(a Volume on Modal): ``root/<embedder key>/ab/<sha256>.f32``, raw little-endian float32, written
atomically. The embedder key is a hash of the embedder id (ids hold ``:``, ``/``, ``+``); an
``EMBEDDER`` file in its folder names it. A vector older than the retention (the thumbnails'
setting, ``IMAGEMATCH_THUMBNAIL_RETENTION_DAYS``) is pruned; its photo then drops out of
re-matches (its prediction stays).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Set
from pathlib import Path

import numpy as np

from imagematch.atomic_files import write_atomic
from imagematch.embedder import Vectors

__all__ = ["PhotoVectorStore"]

_HEX = frozenset("0123456789abcdef")


class PhotoVectorStore:
    """One vector per (embedder id, photo digest)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._labelled: set[str] = set()  # embedder ids whose EMBEDDER file this store has seen

    def _folder(self, embedder_id: str) -> Path:
        return self.root / hashlib.sha256(embedder_id.encode()).hexdigest()[:16]

    def _path(self, embedder_id: str, digest: str) -> Path:
        if len(digest) != 64 or not _HEX.issuperset(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return Path(f"{self._folder(embedder_id)}/{digest[:2]}/{digest}.f32")

    def put(self, embedder_id: str, digest: str, vector: Vectors) -> None:
        """Store (or refresh) the photo's vector."""
        path = self._path(embedder_id, digest)
        if embedder_id not in self._labelled:  # once per process: this runs for every photo job
            label = self._folder(embedder_id) / "EMBEDDER"
            if not label.exists():
                write_atomic(label, (embedder_id + "\n").encode())
            self._labelled.add(embedder_id)
        write_atomic(path, np.asarray(vector, dtype="<f4").reshape(-1).tobytes())

    def get(self, embedder_id: str, digest: str) -> Vectors | None:
        """The vector, or ``None`` if it was never stored or was pruned."""
        try:
            data = self._path(embedder_id, digest).read_bytes()
        except FileNotFoundError:
            return None
        return np.frombuffer(data, dtype="<f4").astype(np.float32)

    def prune(self, *, older_than_days: float, now: float | None = None, keep: Set[str] = frozenset()) -> int:
        """Delete vectors written more than ``older_than_days`` ago, but those of the photos in
        ``keep`` (digests: e.g. learned references); returns how many."""
        cutoff = (time.time() if now is None else now) - older_than_days * 86_400
        removed = 0
        for path in self.root.glob("*/*/*.f32"):
            if path.stem not in keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
