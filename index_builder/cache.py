"""Embedding cache keyed by (embedding key, image SHA-256): a rebuild embeds only new images.

Only what the catalog recipe needs is kept: every image's vector (the normalised mean of its
catalog views, :func:`imagematch.representation.image_vector`) and, for the images in the
whitening sample (:func:`in_fit_sample`), all their view vectors — the whitening is fitted on
those. Stored as float16: half the size, far below the noise of the ranking. With the default
14 views of 1,792 dims that is ~3.6 KB per image, plus ~50 KB for each of at most ~4,096 sample
images: a million images fit in ~3.8 GB. The key names the embedder *and* the view set, so
changing either re-embeds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagematch.embedder import Vectors
from imagematch.representation import image_vector
from index_builder.sql import load_queries

__all__ = ["CachedImage", "EmbeddingCache", "fit_sample_level", "in_fit_sample", "round_trip"]

Q = load_queries("embedding_cache")


def fit_sample_level(images: int, max_fit_images: int) -> int:
    """The sampling level for a catalog of ``images``: the smallest ``k`` with
    ``images / 2**k <= max_fit_images`` (0, everything, for catalogs up to the cap)."""
    level = 0
    while images > max_fit_images << level:
        level += 1
    return level


def in_fit_sample(digest: str, level: int) -> bool:
    """Whether an image (by content hash) is in the whitening sample at ``level``: about one in
    ``2**level``. Samples nest (level k+1 ⊂ level k), so a growing catalog never re-embeds."""
    return int(digest[:8], 16) % (1 << level) == 0


def round_trip(vectors: Vectors) -> Vectors:
    """``vectors`` as the cache returns them (float16 storage), so fresh and cached builds agree."""
    return np.asarray(vectors, dtype=np.float16).astype(np.float32)


@dataclass(frozen=True)
class CachedImage:
    vector: Vectors  # (dim,): the image's vector
    views: Vectors | None  # (views, dim) for whitening-sample images, else None


class EmbeddingCache:
    """A SQLite file of per-image vectors. Safe to share between processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute(Q["journal_mode"])
        self._conn.execute(Q["schema"])

    def get_many(self, embedding_key: str, digests: Iterable[str]) -> dict[str, CachedImage]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, CachedImage] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._conn.execute(
                Q["vectors_of"], {"embedding_key": embedding_key, "digests": json.dumps(chunk)}
            )
            for digest, dim, vector, views in rows:
                found[digest] = CachedImage(
                    np.frombuffer(vector, dtype=np.float16).astype(np.float32),
                    None
                    if views is None
                    else np.frombuffer(views, np.float16).reshape(-1, dim).astype(np.float32),
                )
        return found

    def put_many(
        self, embedding_key: str, views: Mapping[str, Vectors], *, keep_views: Callable[[str], bool]
    ) -> dict[str, CachedImage]:
        """Store each image's vector, and its views where ``keep_views(digest)``; returns what a
        later :meth:`get_many` will return for them."""
        stored = {
            digest: CachedImage(
                round_trip(image_vector(matrix)), round_trip(matrix) if keep_views(digest) else None
            )
            for digest, matrix in views.items()
        }
        with self._conn:
            self._conn.executemany(
                Q["put_vectors"],
                [
                    {
                        "embedding_key": embedding_key,
                        "sha256": digest,
                        "dim": item.vector.shape[-1],
                        "vector": item.vector.astype(np.float16).tobytes(),
                        "views": None if item.views is None else item.views.astype(np.float16).tobytes(),
                    }
                    for digest, item in stored.items()
                ],
            )
        return stored

    def size(self, embedding_key: str) -> tuple[int, int, int]:
        """(images, bytes of vectors, bytes of sample views) stored under ``embedding_key``."""
        images, vector_bytes, view_bytes = self._conn.execute(
            Q["size"], {"embedding_key": embedding_key}
        ).fetchone()
        return int(images), int(vector_bytes), int(view_bytes)

    def close(self) -> None:
        self._conn.close()
