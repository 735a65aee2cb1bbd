"""The product index: FAISS vectors of catalog images and products, searched and answered per product.

Catalog vectors pass through the index's :class:`~imagematch.representation.Projection` (fitted on
the catalog when the index is built) before they are stored; queries pass through the same one.
Two FAISS indexes are kept, both keyed by integer ids:

* one vector per catalog *image* — it names the reference image that matched best and, with
  ``scoring="max"``, ranks products by their best image;
* one vector per *product*, the normalised mean of its image vectors — ``scoring="centroid"`` (the
  default) ranks products by it, which beats the best single picture once the catalog is whitened.

The index and its snapshot files share one :class:`SnapshotState` (:mod:`~imagematch.index.snapshot_files`
reads and writes it); :mod:`imagematch.index.snapshots` decides which directory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from imagematch.embedder.base import Vectors, l2_normalise
from imagematch.errors import EmbedderMismatchError
from imagematch.index.change_log import CatalogChange, ChangeKind
from imagematch.index.event_order import EventOrder
from imagematch.index.learned import LearnedReferences, unpack
from imagematch.index.ranking import product_filter, top_accepted
from imagematch.index.snapshot_files import (
    SNAPSHOT_FORMAT,
    IndexedImage,
    SnapshotState,
    read_snapshot,
    write_snapshot,
)
from imagematch.models import CatalogViews, Match, Product, ProductScoring
from imagematch.representation import Projection
from imagematch.runtime import gc_paused
from imagematch.vector_index import (
    FLAT_MAX_FLOATS,
    index_description,
    make_vector_index,
    one_search_thread,
    resized_vector_index,
)

__all__ = ["SNAPSHOT_FORMAT", "IndexedImage", "ProductIndex"]  # the first two: snapshot_files


class ProductIndex(LearnedReferences):
    """Catalog image and product vectors plus the products they belong to. Not thread-safe for writes.

    ``catalog_views`` records how the catalog images were embedded, so later updates (a product
    added between rebuilds) embed theirs the same way; ``projection`` is applied to every vector.
    """

    def __init__(
        self,
        embedder_id: str,
        dim: int,
        *,
        projection: Projection | None = None,
        scoring: ProductScoring = ProductScoring.CENTROID,
        catalog_views: CatalogViews = CatalogViews.SINGLE,
        version: str = "unsaved",
    ) -> None:
        self.embedder_id = embedder_id
        self.dim = dim
        self.projection = projection or Projection.identity()
        self.scoring = scoring
        self.catalog_views = catalog_views
        self.version = version
        self.built_at = datetime.now(UTC)
        self.model: str | None = None  # the model spec it was built with (IMAGEMATCH_MODEL), if known
        self.products: dict[str, Product] = {}
        self.images: dict[int, IndexedImage] = {}
        self._image_vectors: faiss.Index = make_vector_index(dim, 0)  # exact until sized
        self._product_vectors: faiss.Index = make_vector_index(dim, 0)
        self._images_by_product: dict[str, list[int]] = {}
        self._product_keys: dict[str, int] = {}  # product id -> its id in _product_vectors
        self._product_by_key: dict[int, str] = {}
        self._next_id = 1
        self._next_product_key = 1
        # Live catalog updates: the order of the events applied (see EventOrder) and which
        # change-log entries this state includes.
        self.events = EventOrder()
        self.applied_changes: set[int] = set()
        self.learned = {}  # product id -> its learned references (imagematch.index.learned)
        self.learned_sequences = {}  # product id -> sequence of the learned set applied
        self._lock = threading.RLock()  # live updates and searches share the index

    @property
    def served_version(self) -> str:
        """The snapshot version plus the latest live change it holds (``v000003+17``): it moves
        whenever what a search can return changes (see :func:`version_order`)."""
        with self._lock:
            return f"{self.version}+{max(self.applied_changes)}" if self.applied_changes else self.version

    @property
    def sequences(self) -> dict[str, int]:
        """The sequence of the newest catalog event applied, per product."""
        return self.events.sequences

    @property
    def deleted(self) -> dict[str, datetime]:
        """Products deleted by a catalog event (and not created again since), with when."""
        return self.events.deleted

    @property
    def vector_count(self) -> int:
        """Catalog image vectors in the index."""
        return int(self._image_vectors.ntotal)

    @property
    def recipe(self) -> dict[str, Any]:
        """How the catalog side was built (for stats and reports)."""
        return {
            "catalog_views": self.catalog_views.value,
            "whitening": self.projection.method.value,
            "shrinkage": self.projection.shrinkage,
            "scoring": self.scoring.value,
        }

    def size_vector_indexes(self, *, flat_max_floats: int = FLAT_MAX_FLOATS) -> None:
        """Re-create each FAISS index as the type its size calls for (:mod:`imagematch.vector_index`:
        exact up to a size, IVF with a tuned ``nprobe`` beyond). Called once a build has added
        everything; live updates then add to and remove from whichever type it chose."""
        with self._lock:
            self._image_vectors = resized_vector_index(
                self._image_vectors, list(self.images), self.dim, flat_max_floats
            )
            self._product_vectors = resized_vector_index(
                self._product_vectors, list(self._product_by_key), self.dim, flat_max_floats
            )

    def stats(self, now: datetime) -> dict[str, Any]:
        """Size, freshness and health of the index (``GET /v1/stats``)."""
        with self._lock:
            without_images = sorted(pid for pid in self.products if pid not in self._images_by_product)
            return {
                "version": self.version,
                "built_at": self.built_at.isoformat(),
                "embedder": self.embedder_id,
                "recipe": self.recipe,
                "products": len(self.products),
                "vectors": self.vector_count,
                "learned_references": self.learned_count,
                "vector_index": {
                    "images": index_description(self._image_vectors),
                    "products": index_description(self._product_vectors),
                },
                "products_without_images": len(without_images),
                "products_without_images_sample": without_images[:20],
                "deleted_not_purged": len(self.deleted),
                "last_catalog_event": self.events.describe_last_change(now),
            }

    def product_vector_ids(self, product_id: str) -> list[int]:
        """The product's catalog images (its learned references are not its pictures)."""
        return [vid for vid in self._images_by_product.get(product_id, []) if self.is_catalog_image(vid)]

    def upsert_product(self, product: Product, images: Sequence[tuple[str, str]], vectors: Vectors) -> None:
        """Replace ``product`` and all its vectors. ``images`` are ``(uri, sha256)`` per row of
        ``vectors``: the embedder's (averaged-view) image vectors, before the projection.

        A product with no usable image is still recorded (so reports can name it) but has no vectors.
        """
        if len(images) != len(vectors):
            raise ValueError("one (uri, sha256) pair is needed per vector")
        if len(vectors) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dims; the index has {self.dim}")
        with self._lock:
            self._upsert(product, images, vectors)

    def _upsert(self, product: Product, images: Sequence[tuple[str, str]], vectors: Vectors) -> None:
        self._upsert_catalog(product, images, vectors)
        self._add_learned_vectors(product.id)  # a catalog change keeps the learned references

    def _upsert_catalog(self, product: Product, images: Sequence[tuple[str, str]], vectors: Vectors) -> None:
        self.remove_product(product.id)
        self.events.deleted.pop(product.id, None)
        self.products[product.id] = product
        if not len(vectors):
            return
        projected = self.projection.apply(np.ascontiguousarray(vectors, dtype=np.float32))
        ids = np.arange(self._next_id, self._next_id + len(vectors), dtype=np.int64)
        self._next_id += len(vectors)
        self._image_vectors.add_with_ids(projected, ids)
        self._images_by_product[product.id] = ids.tolist()
        for vid, (uri, sha) in zip(ids.tolist(), images, strict=True):
            self.images[vid] = IndexedImage(vid, product.id, f"{product.id}/{sha[:12]}", uri, sha)
        key = self._next_product_key
        self._next_product_key += 1
        centroid = l2_normalise(projected.mean(axis=0, keepdims=True))
        self._product_vectors.add_with_ids(centroid, np.asarray([key], dtype=np.int64))
        self._product_keys[product.id] = key
        self._product_by_key[key] = product.id

    def remove_product(self, product_id: str) -> bool:
        """Drop a product and its vectors; returns whether it was there."""
        with self._lock:
            return self._remove(product_id)

    def _remove(self, product_id: str) -> bool:
        ids = self._images_by_product.pop(product_id, [])
        if ids:
            self._image_vectors.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]  # SWIG accepts arrays
            for vid in ids:
                del self.images[vid]
        key = self._product_keys.pop(product_id, None)
        if key is not None:
            self._product_vectors.remove_ids(np.asarray([key], dtype=np.int64))  # type: ignore[arg-type]
            del self._product_by_key[key]
        return self.products.pop(product_id, None) is not None

    def continue_event_order(self, earlier: EventOrder) -> None:
        """Take over the catalog event order of the snapshot this one replaces (a rebuild), so an
        event older than one applied before the rebuild stays stale after it: a delete's tombstone
        keeps an older update from bringing the product back. Tombstones of products this index
        lists are dropped — the catalog it was built from lists them again."""
        with self._lock:
            self.events = EventOrder(
                sequences=dict(earlier.sequences),
                deleted={pid: at for pid, at in earlier.deleted.items() if pid not in self.products},
                last_change=earlier.last_change,
            )

    def is_stale(self, product_id: str, sequence: int) -> bool:
        """Whether an event numbered ``sequence`` is older than what the index holds for the product."""
        return self.events.is_stale(product_id, sequence)

    def apply(self, change: CatalogChange) -> bool:
        """Apply a live catalog event unless a newer one for the product is already in; returns
        whether it changed anything. Applying the same change twice is harmless."""
        with self._lock:
            self.applied_changes.add(change.sequence)
            if change.kind is ChangeKind.LEARNED:
                refs = unpack(change.learned, change.vectors)
                return self.set_learned(change.product_id, refs, sequence=change.sequence)
            if not self.events.record(change):
                return False
            if change.kind is ChangeKind.DELETE:
                self._remove(change.product_id)
                self.learned.pop(change.product_id, None)
            else:
                assert change.product is not None and change.vectors is not None
                self._upsert(change.product, change.images, change.vectors)
            return True

    def search(
        self,
        queries: Vectors,
        k: int,
        *,
        embedder_id: str,
        accept: Callable[[Product], bool] | None = None,
    ) -> list[list[Match]]:
        """Top-``k`` products per query row, best first. ``accept`` filters products (e.g. category).

        Raises :class:`EmbedderMismatchError` if the queries come from another embedder.
        """
        if embedder_id != self.embedder_id:
            raise EmbedderMismatchError(
                f"index {self.version} was built with {self.embedder_id!r}; "
                f"queries come from {embedder_id!r}. Rebuild the index with the current model."
            )
        projected = self.projection.apply(np.atleast_2d(queries).astype(np.float32))
        with self._lock, one_search_thread():
            if self.scoring is ProductScoring.MAX:
                return [self._search_by_image(row, k, accept) for row in projected]
            return [self._search_by_centroid(row, k, accept) for row in projected]

    def score_product(self, queries: Vectors, product_id: str, *, embedder_id: str) -> Vectors:
        """Each query row's score for one product, as :meth:`search` would score it (centroid or
        best image): one product against many photos. ``-inf`` for a product without vectors."""
        if embedder_id != self.embedder_id:
            raise EmbedderMismatchError(f"index {self.version} is {self.embedder_id!r}, not {embedder_id!r}")
        projected = self.projection.apply(np.atleast_2d(queries).astype(np.float32))
        with self._lock:
            if self.scoring is ProductScoring.MAX:
                ids = self._images_by_product.get(product_id, [])
                rows = [self._image_vectors.reconstruct(int(vid)) for vid in ids]
            else:
                key = self._product_keys.get(product_id)
                rows = [] if key is None else [self._product_vectors.reconstruct(int(key))]
        if not rows:
            return np.full(len(projected), -np.inf, dtype=np.float32)
        scores: Vectors = (projected @ np.stack(rows).T).max(axis=1)
        return scores

    def _search_by_centroid(
        self, query: Vectors, k: int, accept: Callable[[Product], bool] | None
    ) -> list[Match]:
        accepted = product_filter(accept, self.products)
        hits = top_accepted(self._product_vectors, query, k, self._product_by_key.__getitem__, accepted)
        return [
            self._match(product_id, score, self.closest_catalog_image(product_id, query))
            for product_id, score, _ in hits
        ]

    def _search_by_image(
        self, query: Vectors, k: int, accept: Callable[[Product], bool] | None
    ) -> list[Match]:
        # The first k distinct products in the image ranking are exactly the top-k by max score.
        accepted = product_filter(accept, self.products)
        hits = top_accepted(self._image_vectors, query, k, lambda vid: self.images[vid].product_id, accepted)
        return [
            self._match(product_id, score, self._face_image(product_id, vid, query))
            for product_id, score, vid in hits
        ]

    def _match(self, product_id: str, score: float, vector_id: int | None) -> Match:
        product = self.products[product_id]
        image_id = self.images[vector_id].image_id if vector_id is not None else ""
        return Match(
            product_id=product_id,
            name=product.name,
            category=product.category,
            score=round(min(1.0, float(score)), 6),  # float16 storage can round a perfect match past 1
            image_id=image_id,
        )

    # -- persistence: the state a snapshot directory holds (imagematch.index.snapshot_files) ------

    def snapshot_state(self) -> SnapshotState:  # shared, not copied: write it at once
        return SnapshotState(
            embedder_id=self.embedder_id,
            dim=self.dim,
            projection=self.projection,
            scoring=self.scoring,
            catalog_views=self.catalog_views,
            version=self.version,
            built_at=self.built_at,
            model=self.model,
            next_id=self._next_id,
            next_product_key=self._next_product_key,
            image_vectors=self._image_vectors,
            product_vectors=self._product_vectors,
            products=self.products,
            product_keys=self._product_keys,
            images=self.images,
            events=self.events,
            applied_changes=self.applied_changes,
            learned=self.learned,
            learned_sequences=self.learned_sequences,
        )

    @classmethod
    def from_state(cls, state: SnapshotState) -> ProductIndex:
        index = cls(
            state.embedder_id,
            state.dim,
            projection=state.projection,
            scoring=state.scoring,
            catalog_views=state.catalog_views,
            version=state.version,
        )
        index.built_at, index.model = state.built_at, state.model
        index._next_id, index._next_product_key = state.next_id, state.next_product_key
        index._image_vectors, index._product_vectors = state.image_vectors, state.product_vectors
        index.products, index.images = state.products, state.images
        index._product_keys = state.product_keys
        index._product_by_key = {key: pid for pid, key in state.product_keys.items()}
        for image in state.images.values():
            index._images_by_product.setdefault(image.product_id, []).append(image.vector_id)
        index.events, index.applied_changes = state.events, state.applied_changes
        index.learned, index.learned_sequences = state.learned, state.learned_sequences
        return index

    def write_to(self, directory: Path) -> None:
        with self._lock:
            write_snapshot(self.snapshot_state(), directory)

    @classmethod
    def read_from(cls, directory: Path) -> ProductIndex:
        """Load a snapshot directory. Raises :class:`IndexNotBuiltError` for an older format."""
        with gc_paused():
            return cls.from_state(read_snapshot(directory))
