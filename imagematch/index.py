"""The product index: FAISS vectors of catalog images, searched and answered per product.

Each FAISS id is one catalog *image*; :meth:`ProductIndex.search` aggregates image hits into a
product ranking (a product scores as its best-matching image) and names that image.

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
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from imagematch.embedder.base import Vectors
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.models import Match, Product

__all__ = ["IndexHandle", "IndexedImage", "ProductIndex", "SnapshotStore"]

_VERSION_RE = re.compile(r"^v(\d{6,})$")
POINTER_NAME = "CURRENT"


@dataclass(frozen=True)
class IndexedImage:
    """A catalog image that has a vector in the index."""

    vector_id: int
    product_id: str
    image_id: str
    uri: str
    sha256: str


class ProductIndex:
    """Vectors of catalog images plus the products they belong to. Not thread-safe for writes."""

    def __init__(self, embedder_id: str, dim: int, *, version: str = "unsaved") -> None:
        self.embedder_id = embedder_id
        self.dim = dim
        self.version = version
        self.built_at = datetime.now(UTC)
        self.products: dict[str, Product] = {}
        self.images: dict[int, IndexedImage] = {}
        self._faiss: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._next_id = 1

    @property
    def vector_count(self) -> int:
        return int(self._faiss.ntotal)

    def product_vector_ids(self, product_id: str) -> list[int]:
        return [vid for vid, image in self.images.items() if image.product_id == product_id]

    def upsert_product(self, product: Product, images: Sequence[tuple[str, str]], vectors: Vectors) -> None:
        """Replace ``product`` and all its vectors. ``images`` are ``(uri, sha256)`` per vector row.

        A product with no usable image is still recorded (so reports can name it) but has no vectors.
        """
        if len(images) != len(vectors):
            raise ValueError("one (uri, sha256) pair is needed per vector")
        if len(vectors) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dims; the index has {self.dim}")
        self.remove_product(product.id)
        self.products[product.id] = product
        if not len(vectors):
            return
        ids = np.arange(self._next_id, self._next_id + len(vectors), dtype=np.int64)
        self._next_id += len(vectors)
        self._faiss.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        for vid, (uri, sha) in zip(ids.tolist(), images, strict=True):
            self.images[vid] = IndexedImage(vid, product.id, f"{product.id}/{sha[:12]}", uri, sha)

    def remove_product(self, product_id: str) -> bool:
        """Drop a product and its vectors; returns whether it was there."""
        ids = self.product_vector_ids(product_id)
        if ids:
            self._faiss.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]  # SWIG accepts arrays
            for vid in ids:
                del self.images[vid]
        return self.products.pop(product_id, None) is not None

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
        return [self._search_one(row, k, accept) for row in np.atleast_2d(queries)]

    def _search_one(self, query: Vectors, k: int, accept: Callable[[Product], bool] | None) -> list[Match]:
        total = self.vector_count
        fetch = min(total, max(4 * k, 32))
        while True:
            scores, ids = self._faiss.search(query.reshape(1, -1).astype(np.float32), fetch)
            best: dict[str, tuple[float, int]] = {}
            for score, vid in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                if vid < 0:
                    continue
                product_id = self.images[vid].product_id
                if product_id in best or (accept and not accept(self.products[product_id])):
                    continue
                best[product_id] = (score, vid)  # hits arrive best first: the first is the max
            # The first k distinct products in the image ranking are exactly the top-k by max score.
            if len(best) >= k or fetch >= total:
                break
            fetch = min(total, fetch * 4)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        return [self._match(pid, score, vid) for pid, (score, vid) in ranked]

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
        vectors = self._faiss
        faiss.write_index(vectors, str(directory / "vectors.faiss"))
        meta: dict[str, Any] = {
            "version": self.version,
            "embedder_id": self.embedder_id,
            "dim": self.dim,
            "built_at": self.built_at.isoformat(),
            "next_id": self._next_id,
            "products": [p.model_dump() for p in self.products.values()],
            "images": [asdict(image) for image in self.images.values()],
        }
        (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def read_from(cls, directory: Path) -> ProductIndex:
        meta = json.loads((directory / "meta.json").read_text())
        index = cls(meta["embedder_id"], int(meta["dim"]), version=meta["version"])
        index.built_at = datetime.fromisoformat(meta["built_at"])
        index._next_id = int(meta["next_id"])
        index._faiss = faiss.read_index(str(directory / "vectors.faiss"))
        index.products = {p["id"]: Product.model_validate(p) for p in meta["products"]}
        index.images = {i["vector_id"]: IndexedImage(**i) for i in meta["images"]}
        return index


class SnapshotStore:
    """Versioned snapshot directories under ``root`` with an atomically replaced pointer."""

    def __init__(self, root: Path, *, keep: int = 5) -> None:
        self.root = root
        self.keep = keep

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
        return version

    def load(self, *, embedder_id: str, version: str | None = None) -> ProductIndex:
        """Load ``version`` (default: CURRENT).

        Raises :class:`IndexNotBuiltError` if there is none and :class:`EmbedderMismatchError` if it
        was built by another embedder.
        """
        version = version or self.current_version()
        if version is None or not (self.root / version / "meta.json").exists():
            raise IndexNotBuiltError(
                f"no index snapshot in {self.root}: run `imagematch index build --catalog …` first"
            )
        index = ProductIndex.read_from(self.root / version)
        if index.embedder_id != embedder_id:
            raise EmbedderMismatchError(
                f"snapshot {version} was built with {index.embedder_id!r}, not {embedder_id!r}; "
                "rebuild it with `imagematch index build`"
            )
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
    """The index a process serves: loaded lazily, reloaded when the CURRENT pointer moves.

    The pointer is checked at most every ``check_seconds``; a reload happens off to the side and
    swaps in whole, so searches never wait for (or see half of) a rebuild.
    """

    def __init__(
        self,
        store: SnapshotStore,
        embedder_id: str,
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
        """Reload if the pointer names another version; returns whether it did."""
        with self._lock:
            self._checked_at = self._monotonic()
            version = self.store.current_version()
            if self._index is not None and version == self._index.version:
                return False
            self._index = self.store.load(embedder_id=self.embedder_id, version=version)
            return True

    def replace(self, index: ProductIndex) -> None:
        """Serve ``index`` now (e.g. right after publishing it)."""
        with self._lock:
            self._index = index
            self._checked_at = self._monotonic()
