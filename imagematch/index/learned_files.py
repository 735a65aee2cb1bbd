"""How learned references are stored: their provenance rows and vectors, in a change-log entry or
beside a snapshot (``learned.npy`` plus rows in ``meta.json``). No index logic: both the snapshot
files and :mod:`imagematch.index.learned` build on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from imagematch.embedder.base import Vectors

__all__ = [
    "CATALOG",
    "LEARNED",
    "LearnedReference",
    "pack",
    "read_learned",
    "unpack",
    "write_learned",
]

CATALOG = "catalog"  # IndexedImage.origin of a catalog image
LEARNED = "learned"  # … of a learned reference


@dataclass(frozen=True)
class LearnedReference:
    """One learned reference and its provenance: the photo's job and digest, the label that made
    it one, who gave that label and when. ``vector`` is the embedder's (before the projection)."""

    job_id: int
    label_id: int
    given_by: str
    labelled_at: datetime
    sha256: str
    vector: Vectors

    @property
    def uri(self) -> str:
        """Where it came from (never a picture URL: a customer's photo is not shown as the product's)."""
        return f"learned:job/{self.job_id}"

    def provenance(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "label_id": self.label_id,
            "given_by": self.given_by,
            "labelled_at": self.labelled_at.isoformat(),
            "sha256": self.sha256,
        }

    @classmethod
    def from_provenance(cls, row: dict[str, Any], vector: Vectors) -> LearnedReference:
        return cls(
            job_id=int(row["job_id"]),
            label_id=int(row["label_id"]),
            given_by=str(row["given_by"]),
            labelled_at=datetime.fromisoformat(row["labelled_at"]),
            sha256=str(row["sha256"]),
            vector=np.asarray(vector, dtype=np.float32),
        )


def pack(refs: tuple[LearnedReference, ...], dim: int) -> tuple[list[dict[str, Any]], Vectors]:
    """Provenance rows and stacked vectors (for a change-log entry or a snapshot)."""
    vectors = np.stack([r.vector for r in refs]) if refs else np.zeros((0, dim), np.float32)
    return [r.provenance() for r in refs], vectors.astype(np.float32)


def unpack(rows: list[dict[str, Any]], vectors: Vectors | None) -> tuple[LearnedReference, ...]:
    if vectors is None:
        return ()
    return tuple(LearnedReference.from_provenance(row, vectors[n]) for n, row in enumerate(rows))


def write_learned(
    directory: Path, learned: dict[str, tuple[LearnedReference, ...]], sequences: dict[str, int], dim: int
) -> dict[str, Any]:
    """Write the learned references' vectors to ``learned.npz`` (one array, products in order);
    returns what ``meta.json`` keeps of them: provenance per product and the sets' sequences."""
    rows: dict[str, list[dict[str, Any]]] = {}
    vectors = []
    for product_id, refs in learned.items():
        rows[product_id], stacked = pack(refs, dim)
        vectors.append(stacked)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
    np.save(directory / "learned.npy", matrix)
    return {"learned": rows, "learned_sequences": sequences}


def read_learned(
    directory: Path, meta: dict[str, Any]
) -> tuple[dict[str, tuple[LearnedReference, ...]], dict[str, int]]:
    """What :func:`write_learned` wrote (nothing, for a snapshot written before learning)."""
    rows: dict[str, list[dict[str, Any]]] = meta.get("learned") or {}
    sequences = {pid: int(seq) for pid, seq in (meta.get("learned_sequences") or {}).items()}
    if not rows:
        return {}, sequences
    matrix = np.load(directory / "learned.npy")
    learned, start = {}, 0
    for product_id, provenance in rows.items():
        learned[product_id] = unpack(provenance, matrix[start : start + len(provenance)])
        start += len(provenance)
    return learned, sequences
