"""Live catalog updates: a product created, changed or deleted becomes searchable in seconds.

:class:`LiveCatalog` is what a catalog-event job calls. An upsert downloads the product's images
(safe fetch), embeds them the way the snapshot's catalog was embedded, writes the change to the
:class:`~imagematch.index.ChangeLog` (durable: a restart or another container replays it without
re-embedding) and applies it to the served index at once. Events carry a ``sequence`` (the ledger
id of their job, i.e. arrival order): an event older than the one already applied for a product is
skipped, so ten updates processed in any order end in the state of the last one, and an update
overtaken by a delete never brings the product back.

The next full rebuild (``imagematch index build``, Modal's nightly reindex) folds the log into a
new snapshot and re-fits the whitening; the event order (the newest sequence per product and the
deletes) carries over to it, so an older event that runs after the rebuild — a retry in backoff,
a manual retry, ``imagematch requeue --scope all`` — is still skipped and a deleted product
stays deleted.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from imagematch.embedder import Embedder, Vectors
from imagematch.errors import (
    EmbedderMismatchError,
    IndexNotBuiltError,
    PermanentError,
    SubjectGoneError,
    TransientError,
)
from imagematch.fetch import ImageFetcher
from imagematch.images import sha256_hex
from imagematch.index import CatalogChange, ChangeKind, IndexHandle, ProductIndex, SnapshotStore
from imagematch.ledger import Clock
from imagematch.models import CatalogViews, Product, ProductScoring
from imagematch.pipeline import ImageLimits
from imagematch.representation import embed_catalog_images, image_vector
from imagematch.thumbnails import ThumbnailStore

__all__ = ["CatalogUpdater", "LiveCatalog"]

log = logging.getLogger(__name__)


class CatalogUpdater(Protocol):
    """Applies catalog events to the live index. ``sequence`` grows with the order events arrived
    in (it is the job id), so an implementation must ignore an event older than the one it has
    already applied for that product: events may be processed in any order and more than once."""

    def upsert_product(self, product: Product, *, sequence: int) -> None:
        """Fetch the product's images, embed them, replace its vectors and persist.
        Raises TransientError (retry later) or PermanentError (give up)."""
        ...

    def delete_product(self, product_id: str, *, sequence: int) -> bool:
        """Soft-delete the product; ``False`` if it is unknown."""
        ...


class LiveCatalog:
    """Applies catalog events to the served index (implements the catalog-event handler's updater)."""

    def __init__(
        self,
        *,
        index: IndexHandle,
        snapshots: SnapshotStore,
        embedder: Embedder,
        fetcher: ImageFetcher,
        limits: ImageLimits,
        clock: Clock,
        catalog_views: CatalogViews = CatalogViews.MULTI,
        scoring: ProductScoring = ProductScoring.CENTROID,
        thumbnails: ThumbnailStore | None = None,
    ) -> None:
        self._index = index
        self._snapshots = snapshots
        self._embedder = embedder
        self._fetcher = fetcher
        self._limits = limits
        self._clock = clock
        self._catalog_views = catalog_views
        self._scoring = scoring
        self._thumbnails = thumbnails

    def upsert_product(self, product: Product, *, sequence: int) -> None:
        """Replace ``product`` and its vectors. Raises TransientError (an image download may
        succeed later), SubjectGoneError (a newer event for the product is already applied) or
        PermanentError (none of its images is usable: it is recorded without vectors)."""
        index = self._served_index()
        self._check_fresh(index, product.id, sequence)
        images, vectors, problems = self._embed_images(product, index.catalog_views)
        self._record(
            index,
            CatalogChange(
                sequence=sequence,
                kind=ChangeKind.UPSERT,
                product_id=product.id,
                at=self._clock(),
                product=product,
                images=tuple(images),
                vectors=vectors,
            ),
        )
        for problem in problems:
            log.warning("product %s: %s", product.id, problem)
        if problems and not images:
            raise PermanentError(f"product {product.id} has no usable image: " + "; ".join(problems))

    def delete_product(self, product_id: str, *, sequence: int) -> bool:
        """Soft-delete: vectors removed and never returned again; returns whether it was indexed."""
        index = self._served_index()
        self._check_fresh(index, product_id, sequence)
        existed = product_id in index.products
        change = CatalogChange(
            sequence=sequence, kind=ChangeKind.DELETE, product_id=product_id, at=self._clock()
        )
        self._record(index, change)
        return existed

    def _served_index(self) -> ProductIndex:
        """The served index; a catalog that starts with webhooks (no build yet) gets an empty one.
        Raises TransientError in a process whose model was switched away from (the event waits for
        a process with the new model)."""
        try:
            index = self._index.get()
        except IndexNotBuiltError:
            if self._snapshots.current_version() is not None:
                raise  # a snapshot exists but cannot be read: do not paper over it
            empty = ProductIndex(
                self._embedder.embedder_id,
                self._embedder.dim,
                scoring=self._scoring,
                catalog_views=self._catalog_views,
            )
            self._snapshots.publish(empty)
            self._index.refresh()
            return self._index.get()
        if self._index.waiting_for_model is not None:
            raise TransientError(
                f"snapshot {self._index.waiting_for_model} needs another model than this process holds; "
                "a process started since will apply this event"
            )
        return index

    def _check_fresh(self, index: ProductIndex, product_id: str, sequence: int) -> None:
        if index.embedder_id != self._embedder.embedder_id:
            raise EmbedderMismatchError(
                f"the served index was built with {index.embedder_id!r}; rebuild it for "
                f"{self._embedder.embedder_id!r} before applying catalog events"
            )
        if index.is_stale(product_id, sequence):
            state = "deleted" if product_id in index.deleted else "updated"
            raise SubjectGoneError(
                f"product {product_id} was {state} by a newer event (#{index.sequences[product_id]})"
            )

    def _embed_images(
        self, product: Product, views: CatalogViews
    ) -> tuple[list[tuple[str, str]], Vectors, list[str]]:
        """Download, decode and embed the product's images; bad ones are returned as problems."""
        images, decoded, problems = [], [], []
        for uri in product.images:
            try:
                data = self._fetcher.fetch(uri)  # TransientError propagates: the job retries
                image = self._limits.decode(data)
                decoded.append(image)
                images.append((uri, sha256_hex(data)))
                if self._thumbnails:  # console thumbnail of the reference image
                    self._thumbnails.put(images[-1][1], image)
            except PermanentError as exc:
                problems.append(f"{uri}: {exc}")
        view_vectors = embed_catalog_images(self._embedder, decoded, views)
        rows = [image_vector(v) for v in view_vectors]
        vectors = np.stack(rows) if rows else np.zeros((0, self._embedder.dim), dtype=np.float32)
        return images, vectors.astype(np.float32), problems

    def _record(self, index: ProductIndex, change: CatalogChange) -> None:
        """Durably log ``change``, then apply it to the served index: searchable now."""
        self._snapshots.changes(index.embedder_id).append(change)
        index.apply(change)
