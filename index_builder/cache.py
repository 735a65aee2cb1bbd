"""Embedding cache keyed by (embedding key, image SHA-256): a rebuild embeds only new images.

Each entry is the matrix of an image's view vectors (one row per catalog view; see
:mod:`imagematch.representation`), stored as float16 — half the size, and far below the noise of
the ranking. The key names the embedder *and* the view set, so changing either re-embeds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from imagematch.embedder import Vectors

__all__ = ["EmbeddingCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS image_views (
    embedding_key TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    dim           INTEGER NOT NULL,
    vectors       BLOB    NOT NULL,
    PRIMARY KEY (embedding_key, sha256)
)
"""


class EmbeddingCache:
    """A SQLite file of per-image view vectors. Safe to share between processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(_SCHEMA)

    def get_many(self, embedding_key: str, digests: Iterable[str]) -> dict[str, Vectors]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, Vectors] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                "SELECT sha256, dim, vectors FROM image_views "
                f"WHERE embedding_key = ? AND sha256 IN ({marks})",
                [embedding_key, *chunk],
            )
            for digest, dim, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float16).reshape(-1, dim).astype(np.float32)
        return found

    def put_many(self, embedding_key: str, vectors: Mapping[str, Vectors]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO image_views (embedding_key, sha256, dim, vectors) "
                "VALUES (?, ?, ?, ?)",
                [
                    (embedding_key, digest, matrix.shape[-1], np.asarray(matrix, dtype=np.float16).tobytes())
                    for digest, matrix in vectors.items()
                ],
            )

    def close(self) -> None:
        self._conn.close()
