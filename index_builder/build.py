"""Build a product index from a catalog, embedding only images the cache has not seen.

A bad image (missing, not an image, too large, unreachable) is recorded in the report with its
reason and never aborts the build; a product left with no usable image is listed too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from imagematch.embedder import Embedder, Vectors
from imagematch.errors import ImageMatchError
from imagematch.fetch import ImageFetcher
from imagematch.images import decode_image, sha256_hex
from imagematch.index import ProductIndex, SnapshotStore
from imagematch.models import Product
from imagematch.pipeline import ImageLimits
from index_builder.cache import EmbeddingCache
from index_builder.catalog import load_catalog, read_uri

if TYPE_CHECKING:
    from imagematch.app import Services

__all__ = ["BuildReport", "ImageProblem", "build_and_publish", "build_index", "rebuild_catalog_index"]

Progress = Callable[[int], None]  # called with how many more images were handled


@dataclass(frozen=True)
class ImageProblem:
    product_id: str
    uri: str
    reason: str


@dataclass
class BuildReport:
    products: int = 0
    images: int = 0
    embedded: int = 0
    cached: int = 0
    failed_images: list[ImageProblem] = field(default_factory=list)
    products_without_images: dict[str, str] = field(default_factory=dict)  # id -> why
    catalog_problems: list[str] = field(default_factory=list)
    version: str = ""
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        """The machine-readable report (`index build --json`, Modal's reindex)."""
        return {
            "version": self.version,
            "products": self.products,
            "images": self.images,
            "embedded": self.embedded,
            "cached": self.cached,
            "failed_images": len(self.failed_images),
            "products_without_images": sorted(self.products_without_images),
        }


@dataclass
class _Pending:
    product_id: str
    uri: str
    data: bytes
    digest: str


def build_index(
    products: Sequence[Product],
    *,
    embedder: Embedder,
    cache: EmbeddingCache,
    read_bytes: Callable[[str], bytes],
    limits: ImageLimits,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """Embed every product image (or take it from ``cache``) into a fresh :class:`ProductIndex`."""
    started = time.perf_counter()
    report = BuildReport(products=len(products))
    by_product: dict[str, list[tuple[str, str]]] = {p.id: [] for p in products}
    vectors: dict[str, Vectors] = {}
    batch: list[_Pending] = []

    def flush() -> None:
        report.embedded += _embed_batch(batch, embedder, limits, vectors, by_product, report)
        cache.put_many(
            embedder.embedder_id, {p.digest: vectors[p.digest] for p in batch if p.digest in vectors}
        )
        if progress:
            progress(len(batch))
        batch.clear()

    for product in products:
        report.images += len(product.images)
        for uri in product.images:
            try:
                data = read_bytes(uri)
            except ImageMatchError as exc:
                report.failed_images.append(ImageProblem(product.id, uri, str(exc)))
                if progress:
                    progress(1)
                continue
            digest = sha256_hex(data)
            if digest not in vectors:
                vectors.update(cache.get_many(embedder.embedder_id, [digest]))
            if digest in vectors:
                report.cached += 1
                by_product[product.id].append((uri, digest))
                if progress:
                    progress(1)
                continue
            batch.append(_Pending(product.id, uri, data, digest))
            if len(batch) >= batch_size:
                flush()
    if batch:
        flush()

    index = ProductIndex(embedder.embedder_id, embedder.dim)
    for product in products:
        images = by_product[product.id]
        index.upsert_product(product, images, _stack([vectors[d] for _, d in images], embedder.dim))
        if not images:
            failed = sum(1 for f in report.failed_images if f.product_id == product.id)
            report.products_without_images[product.id] = (
                f"all {failed} images failed" if failed else "no images listed"
            )
    report.seconds = time.perf_counter() - started
    return index, report


def _stack(rows: list[Vectors], dim: int) -> Vectors:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)


def _embed_batch(
    batch: list[_Pending],
    embedder: Embedder,
    limits: ImageLimits,
    vectors: dict[str, Vectors],
    by_product: dict[str, list[tuple[str, str]]],
    report: BuildReport,
) -> int:
    """Decode and embed ``batch``; failures go to the report. Returns how many were embedded."""
    decoded, kept = [], []
    for item in batch:
        try:
            decoded.append(decode_image(item.data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels))
            kept.append(item)
        except ImageMatchError as exc:
            report.failed_images.append(ImageProblem(item.product_id, item.uri, str(exc)))
    for item, vector in zip(kept, embedder.embed(decoded), strict=True):
        vectors[item.digest] = vector
        by_product[item.product_id].append((item.uri, item.digest))
    return len(kept)


def build_and_publish(
    source: str,
    *,
    embedder: Embedder,
    cache: EmbeddingCache,
    fetcher: ImageFetcher,
    limits: ImageLimits,
    snapshots: SnapshotStore,
    batch_size: int = 16,
    progress: Progress | None = None,
    on_catalog: Callable[[int], None] | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """Load the catalog at ``source``, build its index and publish it as the new CURRENT snapshot.

    ``on_catalog`` is told how many images the catalog lists before embedding starts (for a
    progress bar). Raises PermanentError if the catalog itself cannot be read.
    """
    catalog = load_catalog(source, fetcher)
    if on_catalog:
        on_catalog(sum(len(p.images) for p in catalog.products))
    index, report = build_index(
        catalog.products,
        embedder=embedder,
        cache=cache,
        read_bytes=lambda uri: read_uri(uri, fetcher),
        limits=limits,
        batch_size=batch_size,
        progress=progress,
    )
    report.catalog_problems = catalog.problems
    report.version = snapshots.publish(index)
    return index, report


def rebuild_catalog_index(
    services: Services,
    source: str,
    *,
    snapshots: SnapshotStore | None = None,
    progress: Progress | None = None,
    on_catalog: Callable[[int], None] | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """:func:`build_and_publish` with the services' model, embedding cache, fetcher and limits,
    into ``snapshots`` (default: the served index)."""
    cache = EmbeddingCache(services.settings.data_dir / "embedding_cache.sqlite3")
    try:
        return build_and_publish(
            source,
            embedder=services.embedder,
            cache=cache,
            fetcher=services.fetcher,
            limits=services.limits,
            snapshots=snapshots or services.snapshots,
            batch_size=services.settings.batch_size,
            progress=progress,
            on_catalog=on_catalog,
        )
    finally:
        cache.close()
