"""Learned references in the product index: customers' photos that a person confirmed or corrected
to a product, searched like the product's catalog images but never shown as its picture.

A product's learned references are replaced as a whole set (:meth:`LearnedReferences.set_learned`,
ordered by ``sequence`` like catalog events), so applying a change twice, or replaying the change
log in another process, ends in the same state. Their vectors sit beside the catalog's in the
image index (``IndexedImage.origin == "learned"``) and count in the product's prototype through
:func:`product_prototype` — the one place where how a learned reference is scored is decided.

A catalog upsert of the product keeps its learned references; a catalog delete drops them.
"""

from __future__ import annotations

import threading
from typing import Any

import faiss
import numpy as np

from imagematch.embedder.base import Vectors
from imagematch.index.learned_files import (
    CATALOG,
    LEARNED,
    LearnedReference,
    pack,
    read_learned,
    unpack,
    write_learned,
)
from imagematch.index.scoring import blended_prototype
from imagematch.index.snapshot_files import IndexedImage
from imagematch.representation import Projection

__all__ = [
    "CATALOG",
    "LEARNED",
    "LearnedReference",
    "LearnedReferences",
    "pack",
    "product_prototype",
    "read_learned",
    "unpack",
    "write_learned",
]


def product_prototype(catalog: Vectors, learned: Vectors) -> Vectors:
    """The product's vector for centroid scoring, from its projected catalog image vectors and
    learned reference vectors (either may have no rows; not both): the blend of
    :mod:`imagematch.index.scoring`, where how a learned reference counts is decided."""
    return blended_prototype(catalog, learned)


class LearnedReferences:
    """The learned-reference part of :class:`~imagematch.index.product_index.ProductIndex` (a mixin:
    it shares the index's FAISS indexes, maps and lock)."""

    dim: int
    projection: Projection
    images: dict[int, Any]
    learned: dict[str, tuple[LearnedReference, ...]]
    learned_sequences: dict[str, int]
    _lock: threading.RLock
    _image_vectors: faiss.Index
    _product_vectors: faiss.Index
    _images_by_product: dict[str, list[int]]
    _product_keys: dict[str, int]
    _product_by_key: dict[int, str]
    _next_id: int
    _next_product_key: int
    products: dict[str, Any]

    @property
    def learned_count(self) -> int:
        return sum(len(refs) for refs in self.learned.values())

    def set_learned(self, product_id: str, refs: tuple[LearnedReference, ...], *, sequence: int) -> bool:
        """Make ``refs`` the product's learned references unless a newer set (a higher
        ``sequence``) is in; returns whether it was applied. A product the index does not hold
        keeps none."""
        with self._lock:
            if sequence <= self.learned_sequences.get(product_id, 0):
                return False
            self.learned_sequences[product_id] = sequence
            self._drop_learned_vectors(product_id)
            if refs and product_id in self.products:
                self.learned[product_id] = refs
            else:
                self.learned.pop(product_id, None)
            self._add_learned_vectors(product_id)
            return True

    def is_catalog_image(self, vector_id: int) -> bool:
        image = self.images.get(vector_id)
        return image is not None and getattr(image, "origin", CATALOG) == CATALOG

    def _drop_learned_vectors(self, product_id: str) -> None:
        ids = self._images_by_product.get(product_id, [])
        learned = [vid for vid in ids if not self.is_catalog_image(vid)]
        if not learned:
            return
        self._image_vectors.remove_ids(np.asarray(learned, dtype=np.int64))  # type: ignore[arg-type]
        for vid in learned:
            del self.images[vid]
        self._images_by_product[product_id] = [vid for vid in ids if vid not in set(learned)]
        self._refresh_prototype(product_id)

    def _add_learned_vectors(self, product_id: str) -> None:
        """Index the product's learned references (after its catalog images were (re)indexed)."""
        refs = self.learned.get(product_id, ())
        if not refs:
            return
        projected = self.projection.apply(np.stack([r.vector for r in refs]).astype(np.float32))
        ids = np.arange(self._next_id, self._next_id + len(refs), dtype=np.int64)
        self._next_id += len(refs)
        self._image_vectors.add_with_ids(projected, ids)
        for vid, ref in zip(ids.tolist(), refs, strict=True):
            self.images[vid] = IndexedImage(
                vid, product_id, f"{product_id}/{ref.sha256[:12]}", ref.uri, ref.sha256, LEARNED
            )
        self._images_by_product.setdefault(product_id, []).extend(ids.tolist())
        self._refresh_prototype(product_id)

    def _refresh_prototype(self, product_id: str) -> None:
        """Recompute the product's vector from its catalog and learned image vectors."""
        key = self._product_keys.pop(product_id, None)
        if key is not None:
            self._product_vectors.remove_ids(np.asarray([key], dtype=np.int64))  # type: ignore[arg-type]
            del self._product_by_key[key]
        ids = self._images_by_product.get(product_id, [])
        if not ids:
            self._images_by_product.pop(product_id, None)
            return
        catalog = [self._image_vectors.reconstruct(int(v)) for v in ids if self.is_catalog_image(v)]
        learned = [self._image_vectors.reconstruct(int(v)) for v in ids if not self.is_catalog_image(v)]
        empty = np.zeros((0, self.dim), np.float32)
        prototype = product_prototype(
            np.stack(catalog) if catalog else empty, np.stack(learned) if learned else empty
        )
        key = self._next_product_key
        self._next_product_key += 1
        self._product_vectors.add_with_ids(prototype.astype(np.float32), np.asarray([key], dtype=np.int64))
        self._product_keys[product_id] = key
        self._product_by_key[key] = product_id

    def closest_catalog_image(self, product_id: str, query: Vectors) -> int | None:
        """The product's catalog image closest to the (projected) query: the one a match names,
        never a learned reference (``None``: the product has no catalog image)."""
        ids = [vid for vid in self._images_by_product.get(product_id, []) if self.is_catalog_image(vid)]
        if len(ids) <= 1:
            return ids[0] if ids else None
        vectors = np.stack([self._image_vectors.reconstruct(int(vid)) for vid in ids])
        return ids[int(np.argmax(vectors @ query))]

    def _face_image(self, product_id: str, vector_id: int, query: Vectors) -> int | None:
        """The catalog image to name for a hit on ``vector_id`` (max scoring): itself when it is a
        catalog image, else :meth:`closest_catalog_image`."""
        return (
            vector_id if self.is_catalog_image(vector_id) else self.closest_catalog_image(product_id, query)
        )
