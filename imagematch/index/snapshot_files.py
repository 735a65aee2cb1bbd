"""A snapshot directory's files, read and written: ``images.faiss`` and ``products.faiss`` (the
vectors), ``projection.npz`` and ``meta.json`` (products, images, ids, the catalog event order).
Both sides meet in :class:`SnapshotState`, what a :class:`~imagematch.index.ProductIndex` holds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import faiss
from pydantic import TypeAdapter

from imagematch.errors import IndexNotBuiltError
from imagematch.index.event_order import EventOrder
from imagematch.index.learned_files import CATALOG, LearnedReference, read_learned, write_learned
from imagematch.models import CatalogViews, Product, ProductScoring
from imagematch.representation import Projection

__all__ = [
    "SNAPSHOT_FORMAT",
    "IndexedImage",
    "SnapshotState",
    "read_snapshot",
    "read_snapshot_event_order",
    "read_snapshot_model",
    "write_snapshot",
]

SNAPSHOT_FORMAT = 3  # 1: image vectors only; 2: + projection and centroids; 3: + live changes


@dataclass(frozen=True, slots=True)  # slots: a million of these are held in memory
class IndexedImage:
    """An image that has a vector in the index: a catalog image, or a learned reference
    (``origin`` ``"learned"``: a customer's photo, never shown as the product's picture)."""

    vector_id: int
    product_id: str
    image_id: str
    uri: str
    sha256: str
    origin: str = CATALOG


@dataclass
class SnapshotState:
    """Everything a snapshot records of a product index (the index holds the same objects)."""

    embedder_id: str
    dim: int
    projection: Projection
    scoring: ProductScoring
    catalog_views: CatalogViews
    version: str
    built_at: datetime
    model: str | None
    next_id: int
    next_product_key: int
    image_vectors: faiss.Index
    product_vectors: faiss.Index
    products: dict[str, Product]
    product_keys: dict[str, int]
    images: dict[int, IndexedImage]
    events: EventOrder
    applied_changes: set[int]
    learned: dict[str, tuple[LearnedReference, ...]]
    learned_sequences: dict[str, int]


_PRODUCTS = TypeAdapter(list[Product])  # validates a snapshot's products in one call


def write_snapshot(state: SnapshotState, directory: Path) -> None:
    """Write ``state``'s files into ``directory`` (which the caller renames into place)."""
    faiss.write_index(state.image_vectors, str(directory / "images.faiss"))
    faiss.write_index(state.product_vectors, str(directory / "products.faiss"))
    state.projection.save(directory / "projection.npz")
    meta: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "version": state.version,
        "embedder_id": state.embedder_id,
        "model": state.model,
        "dim": state.dim,
        "scoring": state.scoring.value,
        "catalog_views": state.catalog_views.value,
        "built_at": state.built_at.isoformat(),
        "next_id": state.next_id,
        "next_product_key": state.next_product_key,
        "products": [p.model_dump() for p in state.products.values()],
        "product_keys": state.product_keys,
        "images": _image_columns(state.images.values()),
        "applied_changes": sorted(state.applied_changes),
        **state.events.to_meta(),
        **write_learned(directory, state.learned, state.learned_sequences, state.dim),
    }
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))


def read_snapshot(directory: Path) -> SnapshotState:
    """A snapshot directory's state. Raises :class:`IndexNotBuiltError` for an older format."""
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("format") != SNAPSHOT_FORMAT:
        raise IndexNotBuiltError(
            f"snapshot {directory.name} has an older format: rebuild it with `imagematch index build`"
        )
    learned, learned_sequences = read_learned(directory, meta)
    return SnapshotState(
        embedder_id=meta["embedder_id"],
        dim=int(meta["dim"]),
        projection=Projection.load(directory / "projection.npz"),
        scoring=ProductScoring(meta["scoring"]),
        catalog_views=CatalogViews(meta["catalog_views"]),
        version=meta["version"],
        built_at=datetime.fromisoformat(meta["built_at"]),
        model=meta.get("model"),
        next_id=int(meta["next_id"]),
        next_product_key=int(meta["next_product_key"]),
        image_vectors=faiss.read_index(str(directory / "images.faiss")),
        product_vectors=faiss.read_index(str(directory / "products.faiss")),
        products={p.id: p for p in _PRODUCTS.validate_python(meta["products"])},
        product_keys={pid: int(key) for pid, key in meta["product_keys"].items()},
        images={image.vector_id: image for image in _images_from_meta(meta["images"])},
        events=EventOrder.from_meta(meta),
        applied_changes=set(meta["applied_changes"]),
        learned=learned,
        learned_sequences=learned_sequences,
    )


def read_snapshot_model(directory: Path) -> str | None:
    """Only the model spec a snapshot directory was built with (``None`` if not recorded)."""
    model = json.loads((directory / "meta.json").read_text()).get("model")
    return str(model) if model else None


def read_snapshot_event_order(directory: Path) -> EventOrder:
    """Only the catalog event order of a snapshot directory (no vectors are read)."""
    return EventOrder.from_meta(json.loads((directory / "meta.json").read_text()))


def _image_columns(images: Iterable[IndexedImage]) -> dict[str, list[Any]]:
    """Images as columns for ``meta.json`` (a million rows parse several times faster than as
    objects); the image id is derived from the product and hash, so it is not stored."""
    rows = list(images)
    return {
        "vector_id": [image.vector_id for image in rows],
        "product_id": [image.product_id for image in rows],
        "uri": [image.uri for image in rows],
        "sha256": [image.sha256 for image in rows],
        "origin": [image.origin for image in rows],
    }


def _images_from_meta(stored: dict[str, list[Any]] | list[dict[str, Any]]) -> Iterator[IndexedImage]:
    """The images of ``meta.json``: columns, or one object per image (snapshots written before)."""
    if isinstance(stored, list):
        yield from (IndexedImage(**row) for row in stored)
        return
    origins = stored.get("origin") or [CATALOG] * len(stored["vector_id"])
    columns = zip(
        *(stored[key] for key in ("vector_id", "product_id", "uri", "sha256")), origins, strict=True
    )
    for vector_id, product_id, uri, sha, origin in columns:
        yield IndexedImage(vector_id, product_id, f"{product_id}/{sha[:12]}", uri, sha, origin)
