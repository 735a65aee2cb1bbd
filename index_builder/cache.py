"""Embedding cache keyed by (embedder id, image SHA-256): a rebuild embeds only new images."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from imagematch.embedder import Vectors

__all__ = ["EmbeddingCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    embedder_id TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    vector      BLOB NOT NULL,
    PRIMARY KEY (embedder_id, sha256)
)
"""


class EmbeddingCache:
    """A SQLite file of float32 vectors. Safe to share between processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(_SCHEMA)

    def get_many(self, embedder_id: str, digests: Iterable[str]) -> dict[str, Vectors]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, Vectors] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT sha256, vector FROM embeddings WHERE embedder_id = ? AND sha256 IN ({marks})",
                [embedder_id, *chunk],
            )
            for digest, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, embedder_id: str, vectors: Mapping[str, Vectors]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (embedder_id, sha256, vector) VALUES (?, ?, ?)",
                [(embedder_id, d, np.asarray(v, dtype=np.float32).tobytes()) for d, v in vectors.items()],
            )

    def close(self) -> None:
        self._conn.close()
