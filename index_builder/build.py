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
from imagematch.images import sha256_hex
from imagematch.index import ProductIndex, SnapshotStore
from imagematch.index.learned import LearnedReference
from imagematch.models import CatalogViews, Product, ProductScoring, Whitening
from imagematch.pipeline import ImageLimits
from imagematch.representation import Projection, fit_projection
from index_builder.cache import CachedImage, EmbeddingCache, fit_sample_level, in_fit_sample
from index_builder.catalog import load_catalog, read_uri
from index_builder.fanout import ChunkResult, EmbeddingExecutor, ImageTask, LocalExecutor, embed_missing

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
LearnedSets = dict[str, tuple[LearnedReference, ...]]  # product id -> its learned references


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
    refused_images: int = 0  # references the catalog listed that may not be read (see problems)
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
            "refused_images": self.refused_images,
            "products_without_images": sorted(self.products_without_images),
        }

    def unusable_images(self) -> tuple[int, int]:
        """``(refused or failed, listed)``: catalog image references that gave no vector, of all."""
        return self.refused_images + len(self.failed_images), self.refused_images + self.images


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
    executor: EmbeddingExecutor | None = None,
    learned: LearnedSets | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """Hash every product image, embed those the cache lacks through ``executor`` (default: this
    process, :class:`~index_builder.fanout.LocalExecutor`), fit the projection on the catalog's
    whitening sample and the ``learned`` references of its products, and return a fresh
    :class:`ProductIndex` holding both."""
    recipe = recipe or CatalogRecipe()
    started = time.perf_counter()
    report = BuildReport(products=len(products))
    cache_key = f"{embedder.embedder_id}|views={recipe.views.value}"
    images = _hash_images(products, read_bytes, report, progress)
    level = fit_sample_level(len({digest for _, _, digest in images}), recipe.max_fit_images)
    cached, was_cached = _look_up(cache, cache_key, images, level)
    missing = [ImageTask(pid, uri, digest) for pid, uri, digest in images if digest not in was_cached]
    if progress:
        progress(len(images) - len(missing))  # taken from the cache

    # Each image is embedded in up to 14 views: fewer images per pass keep memory flat.
    per_pass = batch_size if recipe.views is CatalogViews.SINGLE else max(1, batch_size // 4)
    executor = executor or LocalExecutor(embedder, read_bytes, limits, recipe.views, per_pass)
    failures = _embed_and_cache(missing, executor, cache, cache_key, level, cached, progress)
    report.embedded = len({t.digest for t in missing} - failures.keys())
    report.cached = sum(1 for _, _, digest in images if digest in was_cached)
    by_product = _by_product(products, images, cached, failures, report)
    learned = {pid: refs for pid, refs in (learned or {}).items() if pid in by_product}
    index = ProductIndex(
        embedder.embedder_id,
        embedder.dim,
        projection=_fit(recipe, by_product, cached, level, learned),
        scoring=recipe.scoring,
        catalog_views=recipe.views,
    )
    index.learned = learned  # indexed with their products' catalog images by _fill
    _fill(index, products, by_product, cached, report, embedder.dim)
    report.seconds = time.perf_counter() - started
    return index, report


def _look_up(
    cache: EmbeddingCache, cache_key: str, images: list[tuple[str, str, str]], level: int
) -> tuple[dict[str, CachedImage], set[str]]:
    """What the cache holds for ``images``, and the digests it holds all that is needed of: a
    sample image cached without its views (the sample grew: a smaller catalog) is re-embedded."""
    cached = cache.get_many(cache_key, (digest for _, _, digest in images))
    complete = {
        digest
        for digest, item in cached.items()
        if item.views is not None or not in_fit_sample(digest, level)
    }
    return cached, complete


def _embed_and_cache(
    missing: list[ImageTask],
    executor: EmbeddingExecutor,
    cache: EmbeddingCache,
    cache_key: str,
    level: int,
    cached: dict[str, CachedImage],
    progress: Progress | None,
) -> dict[str, str]:
    """Embed ``missing`` through ``executor``, caching each chunk as it arrives (a crash loses no
    finished chunk) and adding it to ``cached``; returns the failures by digest."""

    def keep(result: ChunkResult) -> None:
        cached.update(cache.put_many(cache_key, result.views, keep_views=lambda d: in_fit_sample(d, level)))
        if progress:
            progress(len(result.views) + len(result.failures))

    _, failures = embed_missing(missing, executor, on_result=keep)
    return failures


def _by_product(
    products: Sequence[Product],
    images: list[tuple[str, str, str]],
    cached: dict[str, CachedImage],
    failures: dict[str, str],
    report: BuildReport,
) -> dict[str, list[tuple[str, str]]]:
    """Each product's embedded images ``(uri, digest)``; the others go to the report."""
    by_product: dict[str, list[tuple[str, str]]] = {p.id: [] for p in products}
    for pid, uri, digest in images:
        if digest in cached:
            by_product[pid].append((uri, digest))
        else:
            report.failed_images.append(ImageProblem(pid, uri, failures.get(digest, "not embedded")))
    return by_product


def _hash_images(
    products: Sequence[Product],
    read_bytes: Callable[[str], bytes],
    report: BuildReport,
    progress: Progress | None,
) -> list[tuple[str, str, str]]:
    """``(product id, uri, sha256)`` of every readable image; unreadable ones go to the report."""
    images = []
    for product in products:
        report.images += len(product.images)
        for uri in product.images:
            try:
                images.append((product.id, uri, sha256_hex(read_bytes(uri))))
            except ImageMatchError as exc:
                report.failed_images.append(ImageProblem(product.id, uri, str(exc)))
                if progress:
                    progress(1)
    return images


def _fill(
    index: ProductIndex,
    products: Sequence[Product],
    by_product: dict[str, list[tuple[str, str]]],
    cached: dict[str, CachedImage],
    report: BuildReport,
    dim: int,
) -> None:
    """Every product's image vectors into ``index``; products left without any are reported."""
    for product in products:
        images = by_product[product.id]
        index.upsert_product(product, images, _stack([cached[d].vector for _, d in images], dim))
        if not images:
            failed = sum(1 for f in report.failed_images if f.product_id == product.id)
            report.products_without_images[product.id] = (
                f"all {failed} images failed" if failed else "no images listed"
            )
    index.size_vector_indexes()


def _fit(
    recipe: CatalogRecipe,
    by_product: dict[str, list[tuple[str, str]]],
    cached: dict[str, CachedImage],
    level: int,
    learned: LearnedSets,
) -> Projection:
    """The projection fitted on the view vectors of the catalog's whitening sample, plus one row
    per learned reference (real photos: the variation within a product a shoot brings)."""
    images = sorted(
        (digest, product_id)
        for product_id, pairs in by_product.items()
        for _, digest in pairs
        if in_fit_sample(digest, level) and cached[digest].views is not None
    )
    images = list(dict.fromkeys(images))
    rows = [cached[digest].views for digest, _ in images]
    for product_id, refs in sorted(learned.items()):
        images += [(ref.sha256, product_id) for ref in refs]
        rows += [ref.vector.reshape(1, -1) for ref in refs]
    if not images:
        return Projection.identity()
    if recipe.whitening is Whitening.PRODUCT:
        product_numbers = {pid: n for n, pid in enumerate(sorted({pid for _, pid in images}))}
        groups = [product_numbers[pid] for _, pid in images]
    else:
        groups = list(range(len(images)))
    labels = np.repeat(np.asarray(groups, dtype=np.int64), [len(r) for r in rows if r is not None])
    matrix = np.concatenate([r for r in rows if r is not None])
    return fit_projection(matrix, labels, method=recipe.whitening, shrinkage=recipe.shrinkage)


def _stack(rows: list[Vectors], dim: int) -> Vectors:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)


def build_and_publish(
    catalog: str,
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
    executor: EmbeddingExecutor | None = None,
    model: str | None = None,
    point: bool = True,
    learned: LearnedSets | None = None,
) -> tuple[ProductIndex, BuildReport]:
    """Load ``catalog``, build its index (with the ``learned`` references of its products) and
    publish it as the new CURRENT snapshot (``point=False``: a candidate nothing serves, see
    :mod:`index_builder.model_switch`). Products no longer in the catalog lose their vectors; the
    catalog event order carries over, so an event older than one applied before the rebuild is
    still skipped after it. ``settings`` locate database catalogs; ``on_catalog`` is told how many
    images the catalog lists; ``model`` (the spec of ``embedder``) is recorded in the snapshot.
    Raises PermanentError if the catalog cannot be read, ChunksFailedError if chunks of the
    embedding failed outright (nothing is published), PublishBusyError if the lock is held."""
    # Live changes logged before the read are folded in (the catalog is the truth); later, replayed.
    changes = snapshots.changes(embedder.embedder_id)
    folded = set(changes.sequences())
    events = snapshots.event_order(embedder.embedder_id, folding=folded)
    loaded = load_catalog(catalog, fetcher, settings=settings)
    (on_catalog or (lambda _: None))(sum(len(p.images) for p in loaded.products))
    index, report = build_index(
        loaded.products,
        embedder=embedder,
        cache=cache,
        read_bytes=lambda uri: read_uri(uri, fetcher),
        limits=limits,
        recipe=recipe,
        batch_size=batch_size,
        progress=progress,
        executor=executor,
        learned=learned,
    )
    report.catalog_problems, report.refused_images = loaded.problems, loaded.refused_images
    index.continue_event_order(events)
    index.applied_changes, index.model = folded, model
    report.version = snapshots.publish(index, point=point)
    changes.replay(index)
    return index, report


def rebuild_catalog_index(
    services: Services,
    catalog: str,
    *,
    snapshots: SnapshotStore | None = None,
    progress: Progress | None = None,
    on_catalog: Callable[[int], None] | None = None,
    executor: EmbeddingExecutor | None = None,
    point: bool = True,
) -> tuple[ProductIndex, BuildReport]:
    """:func:`build_and_publish` with the services' model, embedding cache, fetcher, limits and
    catalog recipe, into ``snapshots`` (default: the served index). A new served snapshot (a
    whitening refit) re-matches every entity from its stored photo vectors (``rematch`` jobs)."""
    cache = EmbeddingCache(services.settings.data_dir / "embedding_cache.sqlite3")
    try:
        index, report = build_and_publish(
            catalog,
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
            executor=executor,
            model=services.model,
            point=point,
            learned=services.learning.current_sets(services.embedder.embedder_id),
        )
    finally:
        cache.close()
    if snapshots is None:  # the served index: the console shows its reference images
        services.thumbnails.ensure_catalog(
            [
                (image.uri, image.sha256)
                for image in index.images.values()
                if index.is_catalog_image(image.vector_id)
            ],
            lambda uri: read_uri(uri, services.fetcher),
            services.limits,
        )
    if snapshots is None and point:  # the served index changed: every entity is re-matched
        services.entities.schedule_stale(reason="index rebuilt", index_version=index.served_version)
        _prune_photo_vectors(services)
    return index, report


def _prune_photo_vectors(services: Services) -> None:
    """Nightly: stored photo vectors past their retention go, but learned references' stay."""
    if services.photos.vectors is not None:
        services.photos.vectors.prune(
            older_than_days=services.settings.thumbnail_retention_days,
            keep=services.learning.learned_digests(),
        )
