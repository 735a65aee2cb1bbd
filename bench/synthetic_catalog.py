"""A synthetic catalog of any size, generated in chunks so millions of vectors never sit in memory twice.

The same model as ``ann_recall.clustered_catalog``: products of 4 images in 100 categories, unit
vectors; a query photo is its product's centre plus more noise than a catalog image. Chunks are
reproducible (each has its own seed), so a benchmark can read the catalog twice — once to pick a
training sample and the queries, once to add the vectors — without keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np

IMAGES_PER_PRODUCT = 4
CATEGORIES = 100
CHUNK = 200_000  # images per chunk: 0.4 GB of float32 at 512-d, 1.4 GB at 1792-d


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    faiss.normalize_L2(x)
    return x


@dataclass(frozen=True)
class SyntheticCatalog:
    size: int
    dim: int
    seed: int

    @property
    def _scale(self) -> float:
        return 1 / math.sqrt(self.dim)  # a N(0, scale²) vector has norm ≈ 1

    def _categories(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((CATEGORIES, self.dim), dtype=np.float32) * self._scale

    def _centres(self, first_product: int, count: int) -> np.ndarray:
        """Product centres ``first_product …`` (each from its chunk's seed: reproducible)."""
        rng = np.random.default_rng((self.seed, first_product))
        categories = self._categories()[rng.integers(0, CATEGORIES, count)]
        return _unit(
            categories + 0.5 * self._scale * rng.standard_normal((count, self.dim), dtype=np.float32)
        )

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` per chunk of :data:`CHUNK` images; image ``i`` is product ``i // 4``'s."""
        for start in range(0, self.size, CHUNK):
            stop = min(self.size, start + CHUNK)
            first, last = start // IMAGES_PER_PRODUCT, (stop - 1) // IMAGES_PER_PRODUCT
            centres = self._centres(first, last - first + 1)
            ids = np.arange(start, stop, dtype=np.int64)
            rng = np.random.default_rng((self.seed, first, 1))
            noise = rng.standard_normal((stop - start, self.dim), dtype=np.float32)
            yield ids, _unit(centres[ids // IMAGES_PER_PRODUCT - first] + 0.5 * self._scale * noise)

    def queries(self, count: int, *, seed: int) -> np.ndarray:
        """``count`` query photos of random products (centre + noise), unit length."""
        rng = np.random.default_rng((self.seed, seed, 2))
        products = rng.integers(0, max(1, self.size // IMAGES_PER_PRODUCT), count)
        first_of_chunk = products // (CHUNK // IMAGES_PER_PRODUCT) * (CHUNK // IMAGES_PER_PRODUCT)
        photos = np.empty((count, self.dim), np.float32)
        for first in np.unique(first_of_chunk):
            rows = np.flatnonzero(first_of_chunk == first)
            images_in_chunk = min(CHUNK, self.size - int(first) * IMAGES_PER_PRODUCT)
            centres = self._centres(int(first), -(-images_in_chunk // IMAGES_PER_PRODUCT))
            photos[rows] = centres[products[rows] - first]
        noise = rng.standard_normal((count, self.dim), dtype=np.float32)
        return _unit(photos + 0.8 * self._scale * noise)


class TopK:
    """Each query's exact top ``k`` ids over vectors seen chunk by chunk (brute force, merged)."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), k), -np.inf, np.float32)
        self.ids = np.full((len(queries), k), -1, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        scores, positions = faiss.knn(self.queries, vectors, self.k, metric=faiss.METRIC_INNER_PRODUCT)
        all_scores = np.hstack([self.scores, scores])
        all_ids = np.hstack([self.ids, np.where(positions >= 0, ids[positions], -1)])
        best = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(all_scores, best, axis=1)
        self.ids = np.take_along_axis(all_ids, best, axis=1)
