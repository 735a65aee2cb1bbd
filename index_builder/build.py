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
from imagematch.models import CatalogViews, Product, ProductScoring, Whitening
from imagematch.pipeline import ImageLimits
from imagematch.representation import (
    Projection,
    embed_catalog_images,
    fit_projection,
    image_vector,
)
from index_builder.cache import EmbeddingCache
from index_builder.catalog import load_catalog, read_uri

if TYPE_CHECKING:
    from imagematch.app import Services
    from imagematch.config import Settings

__all__ = [
    "BuildReport",
    "CatalogRecipe",
    "ImageProblem",
    "build_and_publish",
    "build_index",
    "rebuild_catalog_index",
]

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


@dataclass(frozen=True)
class CatalogRecipe:
    """How catalog images become index vectors (see :mod:`imagematch.representation`).

    ``max_fit_images`` bounds the whitening fit on big catalogs: a deterministic sample of that
    many images (by content hash) is plenty to estimate the covariance.
    """

    views: CatalogViews = CatalogViews.MULTI
    whitening: Whitening = Whitening.PRODUCT
    shrinkage: float = 0.3
    scoring: ProductScoring = ProductScoring.CENTROID
    max_fit_images: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogRecipe:
        return cls(
            views=settings.catalog_views,
            whitening=settings.whitening,
            shrinkage=settings.whitening_shrinkage,
            scoring=settings.product_scoring,
        )


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
    recipe: CatalogRecipe | None = None,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """Embed every product image (or take it from ``cache``), fit the projection on the catalog
    and return a fresh :class:`ProductIndex`."""
    recipe = recipe or CatalogRecipe()
    started = time.perf_counter()
    report = BuildReport(products=len(products))
    cache_key = f"{embedder.embedder_id}|views={recipe.views.value}"
    by_product: dict[str, list[tuple[str, str]]] = {p.id: [] for p in products}
    views: dict[str, Vectors] = {}  # sha256 -> (views, dim)
    batch: list[_Pending] = []
    # Each image is embedded in up to 14 views: fewer images per pass keep memory flat.
    images_per_batch = batch_size if recipe.views is CatalogViews.SINGLE else max(1, batch_size // 4)

    def flush() -> None:
        report.embedded += _embed_batch(batch, embedder, recipe, limits, views, by_product, report)
        cache.put_many(cache_key, {p.digest: views[p.digest] for p in batch if p.digest in views})
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
            if digest not in views:
                views.update(cache.get_many(cache_key, [digest]))
            if digest in views:
                report.cached += 1
                by_product[product.id].append((uri, digest))
                if progress:
                    progress(1)
                continue
            batch.append(_Pending(product.id, uri, data, digest))
            if len(batch) >= images_per_batch:
                flush()
    if batch:
        flush()

    index = ProductIndex(
        embedder.embedder_id,
        embedder.dim,
        projection=_fit(recipe, by_product, views),
        scoring=recipe.scoring,
        catalog_views=recipe.views,
    )
    for product in products:
        images = by_product[product.id]
        index.upsert_product(
            product, images, _stack([image_vector(views[d]) for _, d in images], embedder.dim)
        )
        if not images:
            failed = sum(1 for f in report.failed_images if f.product_id == product.id)
            report.products_without_images[product.id] = (
                f"all {failed} images failed" if failed else "no images listed"
            )
    index.size_vector_indexes()
    report.seconds = time.perf_counter() - started
    return index, report


def _fit(
    recipe: CatalogRecipe, by_product: dict[str, list[tuple[str, str]]], views: dict[str, Vectors]
) -> Projection:
    """The projection fitted on (a deterministic sample of) the catalog's view vectors."""
    images = sorted(
        ((digest, product_id) for product_id, pairs in by_product.items() for _, digest in pairs),
    )
    images = list(dict.fromkeys(images))[: recipe.max_fit_images]  # content-hash order: an even sample
    if not images:
        return Projection.identity()
    rows = [views[digest] for digest, _ in images]
    if recipe.whitening is Whitening.PRODUCT:
        product_numbers = {pid: n for n, pid in enumerate(sorted({pid for _, pid in images}))}
        groups = [product_numbers[pid] for _, pid in images]
    else:
        groups = list(range(len(images)))
    labels = np.repeat(np.asarray(groups, dtype=np.int64), [len(r) for r in rows])
    return fit_projection(np.concatenate(rows), labels, method=recipe.whitening, shrinkage=recipe.shrinkage)


def _stack(rows: list[Vectors], dim: int) -> Vectors:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)


def _embed_batch(
    batch: list[_Pending],
    embedder: Embedder,
    recipe: CatalogRecipe,
    limits: ImageLimits,
    views: dict[str, Vectors],
    by_product: dict[str, list[tuple[str, str]]],
    report: BuildReport,
) -> int:
    """Decode and embed ``batch`` (every catalog view); failures go to the report. Returns how
    many images were embedded."""
    decoded, kept = [], []
    for item in batch:
        try:
            decoded.append(decode_image(item.data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels))
            kept.append(item)
        except ImageMatchError as exc:
            report.failed_images.append(ImageProblem(item.product_id, item.uri, str(exc)))
    for item, matrix in zip(kept, embed_catalog_images(embedder, decoded, recipe.views), strict=True):
        views[item.digest] = matrix
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
    recipe: CatalogRecipe | None = None,
    settings: Settings | None = None,
    batch_size: int = 16,
    progress: Progress | None = None,
    on_catalog: Callable[[int], None] | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """Load the catalog at ``source``, build its index and publish it as the new CURRENT snapshot.
    Products no longer in the catalog lose their vectors; soft-deleted products are purged.

    ``settings`` locate database sources (``supabase:``, custom table names). ``on_catalog`` is
    told how many images the catalog lists before embedding starts (for a
    progress bar). Raises PermanentError if the catalog itself cannot be read.
    """
    # The catalog source is the truth: live changes logged before it is read are folded into
    # (superseded by) the new snapshot; those arriving during the build are replayed on top of it.
    folded = set(snapshots.changes.sequences())
    catalog = load_catalog(source, fetcher, settings=settings)
    if on_catalog:
        on_catalog(sum(len(p.images) for p in catalog.products))
    index, report = build_index(
        catalog.products,
        embedder=embedder,
        cache=cache,
        read_bytes=lambda uri: read_uri(uri, fetcher),
        limits=limits,
        recipe=recipe,
        batch_size=batch_size,
        progress=progress,
    )
    report.catalog_problems = catalog.problems
    index.applied_changes = folded
    report.version = snapshots.publish(index)
    snapshots.changes.replay(index)
    return index, report


def rebuild_catalog_index(
    services: Services,
    source: str,
    *,
    snapshots: SnapshotStore | None = None,
    progress: Progress | None = None,
    on_catalog: Callable[[int], None] | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """:func:`build_and_publish` with the services' model, embedding cache, fetcher, limits and
    catalog recipe, into ``snapshots`` (default: the served index). A new served snapshot (a
    whitening refit) re-matches every entity from its stored photo vectors (``rematch`` jobs)."""
    cache = EmbeddingCache(services.settings.data_dir / "embedding_cache.sqlite3")
    try:
        built = build_and_publish(
            source,
            embedder=services.embedder,
            cache=cache,
            fetcher=services.fetcher,
            limits=services.limits,
            snapshots=snapshots or services.snapshots,
            recipe=CatalogRecipe.from_settings(services.settings),
            settings=services.settings,
            batch_size=services.settings.batch_size,
            progress=progress,
            on_catalog=on_catalog,
        )
    finally:
        cache.close()
    if snapshots is None:
        services.entities.schedule_stale(reason="index rebuilt")
        if services.photos.vectors is not None:  # nightly: stored vectors past their retention go
            services.photos.vectors.prune(older_than_days=services.settings.thumbnail_retention_days)
    return built
