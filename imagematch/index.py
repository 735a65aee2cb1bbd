"""The product index: FAISS vectors of catalog images and products, searched and answered per product.

Catalog vectors pass through the index's :class:`~imagematch.representation.Projection` (fitted on
the catalog when the index is built) before they are stored; queries pass through the same one.
Two FAISS indexes are kept, both keyed by integer ids:

* one vector per catalog *image* — it names the reference image that matched best and, with
  ``scoring="max"``, ranks products by their best image;
* one vector per *product*, the normalised mean of its image vectors — ``scoring="centroid"`` (the
  default) ranks products by it: one vector per product summarises all its pictures, which beats
  the best single picture once the catalog is whitened (see ``BENCHMARKS.md``).

Snapshots live in ``<root>/v000123/`` directories; ``<root>/CURRENT`` names the live one and is
replaced atomically, so a reader sees the old snapshot or the new one, never half of one. A snapshot
directory is never written to after it is published.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from imagematch.embedder.base import Vectors, l2_normalise
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.models import CatalogViews, Match, Product, ProductScoring
from imagematch.representation import Projection
from imagematch.vector_index import (
    FLAT_MAX_FLOATS,
    get_nprobe,
    index_description,
    index_kind_for,
    make_vector_index,
    tune_nprobe,
)

__all__ = [
    "CatalogChange",
    "ChangeKind",
    "ChangeLog",
    "IndexHandle",
    "IndexedImage",
    "ProductIndex",
    "SnapshotStore",
]

_VERSION_RE = re.compile(r"^v(\d{6,})$")
POINTER_NAME = "CURRENT"
SNAPSHOT_FORMAT = 3  # 1: image vectors only; 2: + projection and centroids; 3: + live changes


@dataclass(frozen=True)
class IndexedImage:
    """A catalog image that has a vector in the index."""

    vector_id: int
    product_id: str
    image_id: str
    uri: str
    sha256: str


class ChangeKind(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True)
class CatalogChange:
    """One applied catalog event, as stored in the change log (see :class:`ChangeLog`).

    ``sequence`` orders events (the ledger id of the job that carried it: arrival order); for an
    upsert, ``vectors`` are the embedder's image vectors (before the projection), one row per image.
    """

    sequence: int
    kind: ChangeKind
    product_id: str
    at: datetime
    product: Product | None = None
    images: tuple[tuple[str, str], ...] = ()
    vectors: Vectors | None = None


def _flat_ip(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _resized(current: faiss.Index, ids: list[int], dim: int, flat_max_floats: int) -> faiss.Index:
    """``current``'s vectors in a new index of the type :func:`make_vector_index` picks for them."""
    if (
        index_kind_for(dim, len(ids), flat_max_floats=flat_max_floats) == "flat"
        and get_nprobe(current) is None
    ):
        return current  # already exact, and exact is right for this size
    keys = np.asarray(ids, dtype=np.int64)
    vectors = (
        np.stack([current.reconstruct(int(key)) for key in keys]) if ids else np.zeros((0, dim), np.float32)
    )
    resized = make_vector_index(dim, len(ids), training_vectors=vectors, flat_max_floats=flat_max_floats)
    if ids:
        resized.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), keys)
        tune_nprobe(resized, vectors, keys)
    return resized


class ProductIndex:
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
        self.products: dict[str, Product] = {}
        self.images: dict[int, IndexedImage] = {}
        self._image_vectors: faiss.Index = _flat_ip(dim)
        self._product_vectors: faiss.Index = _flat_ip(dim)
        self._images_by_product: dict[str, list[int]] = {}
        self._product_keys: dict[str, int] = {}  # product id -> its id in _product_vectors
        self._product_by_key: dict[int, str] = {}
        self._next_id = 1
        self._next_product_key = 1
        # Live catalog updates: the latest event applied per product, deleted products (kept until
        # the next full rebuild purges them) and which change-log entries this state includes.
        self.sequences: dict[str, int] = {}
        self.deleted: dict[str, datetime] = {}
        self.applied_changes: set[int] = set()
        self.last_change: tuple[int, datetime] | None = None
        self._lock = threading.RLock()  # live updates and searches share the index

    @property
    def served_version(self) -> str:
        """The snapshot version plus the latest live change it holds (``v000003+17``): it moves
        whenever what a search can return changes (see :func:`version_order`)."""
        with self._lock:
            return f"{self.version}+{max(self.applied_changes)}" if self.applied_changes else self.version

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
            self._image_vectors = _resized(self._image_vectors, list(self.images), self.dim, flat_max_floats)
            self._product_vectors = _resized(
                self._product_vectors, list(self._product_by_key), self.dim, flat_max_floats
            )

    def stats(self, now: datetime) -> dict[str, Any]:
        """Size, freshness and health of the index (``GET /v1/stats``)."""
        with self._lock:
            without_images = sorted(pid for pid in self.products if pid not in self._images_by_product)
            last = self.last_change
            return {
                "version": self.version,
                "built_at": self.built_at.isoformat(),
                "embedder": self.embedder_id,
                "recipe": self.recipe,
                "products": len(self.products),
                "vectors": self.vector_count,
                "vector_index": {
                    "images": index_description(self._image_vectors),
                    "products": index_description(self._product_vectors),
                },
                "products_without_images": len(without_images),
                "products_without_images_sample": without_images[:20],
                "deleted_not_purged": len(self.deleted),
                "last_catalog_event": None
                if last is None
                else {
                    "sequence": last[0],
                    "applied_at": last[1].isoformat(),
                    "age_seconds": round((now - last[1]).total_seconds(), 1),
                },
            }

    def product_vector_ids(self, product_id: str) -> list[int]:
        return list(self._images_by_product.get(product_id, []))

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
        self.remove_product(product.id)
        self.deleted.pop(product.id, None)
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

    def is_stale(self, product_id: str, sequence: int) -> bool:
        """Whether an event numbered ``sequence`` is older than what the index holds for the product."""
        return sequence <= self.sequences.get(product_id, 0)

    def apply(self, change: CatalogChange) -> bool:
        """Apply a live catalog event unless a newer one for the product is already in; returns
        whether it changed anything. Applying the same change twice is harmless."""
        with self._lock:
            self.applied_changes.add(change.sequence)
            if self.is_stale(change.product_id, change.sequence):
                return False
            self.sequences[change.product_id] = change.sequence
            if change.kind is ChangeKind.DELETE:
                self._remove(change.product_id)
                self.deleted[change.product_id] = change.at
            else:
                assert change.product is not None and change.vectors is not None
                self._upsert(change.product, change.images, change.vectors)
            if self.last_change is None or change.at >= self.last_change[1]:
                self.last_change = (change.sequence, change.at)
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
        with self._lock:
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
        hits = self._top_accepted(self._product_vectors, query, k, accept, self._product_by_key.__getitem__)
        return [
            self._match(product_id, score, self._best_image(product_id, query))
            for product_id, score, _ in hits
        ]

    def _search_by_image(
        self, query: Vectors, k: int, accept: Callable[[Product], bool] | None
    ) -> list[Match]:
        # The first k distinct products in the image ranking are exactly the top-k by max score.
        hits = self._top_accepted(
            self._image_vectors, query, k, accept, lambda vid: self.images[vid].product_id
        )
        return [self._match(product_id, score, vid) for product_id, score, vid in hits]

    def _top_accepted(
        self,
        vectors: faiss.Index,
        query: Vectors,
        k: int,
        accept: Callable[[Product], bool] | None,
        product_of: Callable[[int], str],
    ) -> list[tuple[str, float, int]]:
        """The first ``k`` distinct accepted products in ``vectors``' ranking, with score and hit id.

        Fetches more hits while filters or duplicate products leave fewer than ``k``.
        """
        total = int(vectors.ntotal)
        fetch = min(total, max(4 * k, 32))
        best: dict[str, tuple[float, int]] = {}
        while fetch > 0:
            scores, ids = vectors.search(query.reshape(1, -1), fetch)
            best = {}
            for score, hit in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                if hit < 0:
                    continue
                product_id = product_of(hit)
                if product_id in best or (accept and not accept(self.products[product_id])):
                    continue
                best[product_id] = (score, hit)  # hits arrive best first
                if len(best) == k:
                    break
            if len(best) >= k or fetch >= total:
                break
            fetch = min(total, fetch * 4)
        return [(product_id, score, hit) for product_id, (score, hit) in best.items()]

    def _best_image(self, product_id: str, query: Vectors) -> int:
        ids = self._images_by_product[product_id]
        if len(ids) == 1:
            return ids[0]
        vectors = np.stack([self._image_vectors.reconstruct(vid) for vid in ids])
        return ids[int(np.argmax(vectors @ query))]

    def _match(self, product_id: str, score: float, vector_id: int) -> Match:
        product = self.products[product_id]
        image = self.images[vector_id]
        return Match(
            product_id=product_id,
            name=product.name,
            category=product.category,
            score=round(float(score), 6),
            image_id=image.image_id,
        )

    # -- persistence ---------------------------------------------------------------------------

    def write_to(self, directory: Path) -> None:
        with self._lock:
            self._write_to(directory)

    def _write_to(self, directory: Path) -> None:
        faiss.write_index(self._image_vectors, str(directory / "images.faiss"))
        faiss.write_index(self._product_vectors, str(directory / "products.faiss"))
        self.projection.save(directory / "projection.npz")
        meta: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "version": self.version,
            "embedder_id": self.embedder_id,
            "dim": self.dim,
            "scoring": self.scoring.value,
            "catalog_views": self.catalog_views.value,
            "built_at": self.built_at.isoformat(),
            "next_id": self._next_id,
            "next_product_key": self._next_product_key,
            "products": [p.model_dump() for p in self.products.values()],
            "product_keys": self._product_keys,
            "images": [asdict(image) for image in self.images.values()],
            "sequences": self.sequences,
            "deleted": {pid: at.isoformat() for pid, at in self.deleted.items()},
            "applied_changes": sorted(self.applied_changes),
            "last_change": [self.last_change[0], self.last_change[1].isoformat()]
            if self.last_change
            else None,
        }
        (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def read_from(cls, directory: Path) -> ProductIndex:
        """Load a snapshot directory. Raises :class:`IndexNotBuiltError` for an older format."""
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise IndexNotBuiltError(
                f"snapshot {directory.name} has an older format: rebuild it with `imagematch index build`"
            )
        index = cls(
            meta["embedder_id"],
            int(meta["dim"]),
            projection=Projection.load(directory / "projection.npz"),
            scoring=ProductScoring(meta["scoring"]),
            catalog_views=CatalogViews(meta["catalog_views"]),
            version=meta["version"],
        )
        index.built_at = datetime.fromisoformat(meta["built_at"])
        index._next_id = int(meta["next_id"])
        index._next_product_key = int(meta["next_product_key"])
        index._image_vectors = faiss.read_index(str(directory / "images.faiss"))
        index._product_vectors = faiss.read_index(str(directory / "products.faiss"))
        index.products = {p["id"]: Product.model_validate(p) for p in meta["products"]}
        index._product_keys = {pid: int(key) for pid, key in meta["product_keys"].items()}
        index._product_by_key = {key: pid for pid, key in index._product_keys.items()}
        for row in meta["images"]:
            image = IndexedImage(**row)
            index.images[image.vector_id] = image
            index._images_by_product.setdefault(image.product_id, []).append(image.vector_id)
        index.sequences = {pid: int(seq) for pid, seq in meta["sequences"].items()}
        index.deleted = {pid: datetime.fromisoformat(at) for pid, at in meta["deleted"].items()}
        index.applied_changes = set(meta["applied_changes"])
        if meta["last_change"]:
            index.last_change = (int(meta["last_change"][0]), datetime.fromisoformat(meta["last_change"][1]))
        return index


class ChangeLog:
    """Live catalog events since the snapshots were written: ``<root>/changes/000000000042.npz``.

    Append-only: one file per event, named by its sequence, written to a temporary name and
    renamed into place, never modified — so writers in several processes (or Modal containers
    sharing a Volume) never collide, and readers replay new files in sequence order. A snapshot
    records which entries it already includes; entries folded into the current snapshot are
    deleted when it is published.
    """

    def __init__(self, root: Path) -> None:
        self.directory = root / "changes"

    def append(self, change: CatalogChange) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{change.sequence:012d}.npz"
        if target.exists():
            return  # the same event, recorded by an earlier attempt
        meta = {
            "sequence": change.sequence,
            "kind": change.kind.value,
            "product_id": change.product_id,
            "at": change.at.isoformat(),
            "product": change.product.model_dump() if change.product else None,
            "images": [list(image) for image in change.images],
        }
        fd, tmp = tempfile.mkstemp(prefix=".change-", suffix=".npz", dir=self.directory)
        with os.fdopen(fd, "wb") as file:
            vectors = change.vectors if change.vectors is not None else np.zeros((0, 0), np.float32)
            np.savez(file, meta=np.array(json.dumps(meta)), vectors=vectors)
        os.replace(tmp, target)

    def sequences(self) -> list[int]:
        if not self.directory.exists():
            return []
        return sorted(int(p.stem) for p in self.directory.glob("*.npz") if p.stem.isdigit())

    def read(self, sequence: int) -> CatalogChange | None:
        """The entry, or ``None`` if it was folded into a snapshot and deleted meanwhile."""
        try:
            with np.load(self.directory / f"{sequence:012d}.npz") as data:
                meta = json.loads(str(data["meta"]))
                vectors = data["vectors"].astype(np.float32)
        except FileNotFoundError:
            return None
        return CatalogChange(
            sequence=meta["sequence"],
            kind=ChangeKind(meta["kind"]),
            product_id=meta["product_id"],
            at=datetime.fromisoformat(meta["at"]),
            product=Product.model_validate(meta["product"]) if meta["product"] else None,
            images=tuple((uri, sha) for uri, sha in meta["images"]),
            vectors=vectors if meta["kind"] == ChangeKind.UPSERT else None,
        )

    def replay(self, index: ProductIndex) -> int:
        """Apply the entries ``index`` does not include yet, in order; returns how many."""
        applied = 0
        for sequence in self.sequences():
            if sequence in index.applied_changes:
                continue
            change = self.read(sequence)
            if change is not None:
                index.apply(change)
                applied += 1
        return applied

    def discard(self, sequences: set[int]) -> None:
        for sequence in sequences:
            (self.directory / f"{sequence:012d}.npz").unlink(missing_ok=True)


class SnapshotStore:
    """Versioned snapshot directories under ``root`` with an atomically replaced pointer, plus the
    :class:`ChangeLog` of live catalog events applied on top of the current one."""

    def __init__(self, root: Path, *, keep: int = 5) -> None:
        self.root = root
        self.keep = keep
        self.changes = ChangeLog(root)

    @property
    def pointer(self) -> Path:
        return self.root / POINTER_NAME

    def current_version(self) -> str | None:
        try:
            return self.pointer.read_text().strip() or None
        except FileNotFoundError:
            return None

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        found = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(found, key=lambda name: int(name[1:]))

    def publish(self, index: ProductIndex) -> str:
        """Write ``index`` as a new version, point CURRENT at it, prune old ones; returns the version.

        The files are written to a temporary directory first and renamed into place, so a crash
        leaves either no new version or a complete one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            while True:
                existing = self.versions()
                version = f"v{(int(existing[-1][1:]) + 1) if existing else 1:06d}"
                index.version = version
                index.write_to(staging)
                try:
                    staging.rename(self.root / version)  # fails if another writer took the name
                    break
                except OSError:
                    continue
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._point_at(version)
        self._prune()
        self.changes.discard(index.applied_changes)  # folded into the snapshot now current
        return version

    def load(self, *, embedder_id: str | None, version: str | None = None) -> ProductIndex:
        """Load ``version`` (default: CURRENT) with the change log replayed on top.

        Raises :class:`IndexNotBuiltError` if there is none and :class:`EmbedderMismatchError` if it
        was built by another embedder.
        """
        version = version or self.current_version()
        if version is None or not (self.root / version / "meta.json").exists():
            raise IndexNotBuiltError(
                f"no index snapshot in {self.root}: run `imagematch index build --catalog …` first"
            )
        index = ProductIndex.read_from(self.root / version)
        if embedder_id is not None and index.embedder_id != embedder_id:
            raise EmbedderMismatchError(
                f"snapshot {version} was built with {index.embedder_id!r}, not {embedder_id!r}; "
                "rebuild it with `imagematch index build`"
            )
        self.changes.replay(index)
        return index

    def _point_at(self, version: str) -> None:
        tmp = self.root / f".{POINTER_NAME}.{os.getpid()}.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.pointer)

    def _prune(self) -> None:
        current = self.current_version()
        for old in self.versions()[: -self.keep]:
            if old != current:
                shutil.rmtree(self.root / old, ignore_errors=True)


class IndexHandle:
    """The index a process serves: loaded lazily, reloaded when the CURRENT pointer moves, and
    brought up to date with live catalog changes other processes logged.

    The pointer and the change log are checked at most every ``check_seconds``; a reload happens
    off to the side and swaps in whole, so searches never wait for (or see half of) a rebuild.
    ``embedder_id`` ``None``: a process without the model, which only reads the index (stats).
    """

    def __init__(
        self,
        store: SnapshotStore,
        embedder_id: str | None,
        *,
        check_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.embedder_id = embedder_id
        self._check_seconds = check_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._index: ProductIndex | None = None
        self._checked_at = float("-inf")

    def get(self) -> ProductIndex:
        """The current index. Raises IndexNotBuiltError / EmbedderMismatchError (see load)."""
        if self._index is None or self._monotonic() - self._checked_at >= self._check_seconds:
            self.refresh()
        assert self._index is not None
        return self._index

    def refresh(self) -> bool:
        """Reload if the pointer names another version, else replay new change-log entries;
        returns whether the served index changed."""
        with self._lock:
            self._checked_at = self._monotonic()
            version = self.store.current_version()
            if self._index is not None and version == self._index.version:
                return self.store.changes.replay(self._index) > 0
            self._index = self.store.load(embedder_id=self.embedder_id, version=version)
            return True

    def replace(self, index: ProductIndex) -> None:
        """Serve ``index`` now (e.g. right after publishing it)."""
        with self._lock:
            self._index = index
            self._checked_at = self._monotonic()
