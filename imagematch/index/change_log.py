"""The change log: live catalog events recorded next to the snapshots, replayed on load.

A :class:`CatalogChange` is one applied catalog event; :class:`ChangeLog` keeps them as one file
each, so every process serving the index (or a Modal container sharing the Volume) catches up
with the changes another one applied, without re-embedding anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imagematch.embedder.base import Vectors
from imagematch.models import Product

__all__ = ["CatalogChange", "ChangeKind", "ChangeLog"]


class ChangeKind(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"
    LEARNED = "learned"  # the product's whole set of learned references (imagematch.index.learned)


@dataclass(frozen=True)
class CatalogChange:
    """One applied catalog event, as stored in the change log (see :class:`ChangeLog`).

    ``sequence`` orders events (the ledger id of the job that carried it: arrival order); for an
    upsert, ``vectors`` are the embedder's image vectors (before the projection), one row per image.
    For ``learned``, ``learned`` holds each reference's provenance, one per row of ``vectors``.
    """

    sequence: int
    kind: ChangeKind
    product_id: str
    at: datetime
    product: Product | None = None
    images: tuple[tuple[str, str], ...] = ()
    vectors: Vectors | None = None
    learned: list[dict[str, Any]] = field(default_factory=list)


class ChangeTarget(Protocol):
    """What a change log is replayed into (a :class:`~imagematch.index.ProductIndex`); a protocol,
    so this module and the index do not import each other."""

    applied_changes: set[int]

    def apply(self, change: CatalogChange) -> object: ...


class ChangeLog:
    """Live catalog events since the snapshots were written, one log per embedder (their vectors
    are that model's): ``<root>/changes/<embedder key>/000000000042.npz``. While a new model's
    snapshot is built beside the served one, each model's events stay apart.

    Append-only: one file per event, named by its sequence, written to a temporary name and
    renamed into place, never modified — so writers in several processes (or Modal containers
    sharing a Volume) never collide, and readers replay new files in sequence order. A snapshot
    records which entries it already includes; entries folded into the current snapshot are
    deleted when it is published.
    """

    def __init__(self, root: Path, embedder_id: str) -> None:
        key = hashlib.sha256(embedder_id.encode()).hexdigest()[:16]
        self.directory = root / "changes" / key

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
            "learned": change.learned,
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
            vectors=vectors if meta["kind"] != ChangeKind.DELETE else None,
            learned=meta.get("learned") or [],
        )

    def replay(self, index: ChangeTarget) -> int:
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
