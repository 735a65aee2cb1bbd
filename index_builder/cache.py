"""Embedding cache keyed by (embedding key, image SHA-256): a rebuild embeds only new images.

Each entry is the matrix of an image's view vectors (one row per catalog view; see
:mod:`imagematch.representation`), stored as float16 — half the size, and far below the noise of
the ranking. The key names the embedder *and* the view set, so changing either re-embeds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from imagematch.embedder import Vectors
from index_builder.sql import load_queries

__all__ = ["EmbeddingCache"]

Q = load_queries("embedding_cache")


class EmbeddingCache:
    """A SQLite file of per-image view vectors. Safe to share between processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute(Q["journal_mode"])
        self._conn.execute(Q["schema"])

    def get_many(self, embedding_key: str, digests: Iterable[str]) -> dict[str, Vectors]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, Vectors] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._conn.execute(
                Q["views_of"], {"embedding_key": embedding_key, "digests": json.dumps(chunk)}
            )
            for digest, dim, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float16).reshape(-1, dim).astype(np.float32)
        return found

    def put_many(self, embedding_key: str, vectors: Mapping[str, Vectors]) -> None:
        with self._conn:
            self._conn.executemany(
                Q["put_views"],
                [
                    {
                        "embedding_key": embedding_key,
                        "sha256": digest,
                        "dim": matrix.shape[-1],
                        "vectors": np.asarray(matrix, dtype=np.float16).tobytes(),
                    }
                    for digest, matrix in vectors.items()
                ],
            )

    def close(self) -> None:
        self._conn.close()
