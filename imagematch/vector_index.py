"""FAISS index types by catalog size: exact search while it is cheap, IVF beyond; float16 storage.

Vectors are L2-normalised float32, so inner product is cosine. Both kinds take external ids:
``add_with_ids``, ``remove_ids`` and ``reconstruct(id)`` work on each, and ``faiss.write_index`` /
``faiss.read_index`` keep everything, ``nprobe`` included.

- **flat** (``IndexIDMap2`` over a float16 ``IndexScalarQuantizer``): exact up to float16
  rounding of the stored vectors (a score moves by ~1e-4; queries stay float32). A query reads
  every vector, so its cost grows with ``n × dim``: ~2.5 ms per query on one CPU core at 25 M
  values. Flat is used up to :data:`FLAT_MAX_FLOATS`, i.e. ~49 k vectors of 512 dims (OpenCLIP
  ViT-B/16) or ~14 k of 1792: exact, nothing to train, and a small share of a match's time next to
  embedding the photo.
- **ivf** (``IndexIVFScalarQuantizer``, float16, ``nlist ≈ 4·√n`` cells, k-means trained on a
  sample of the data): a query reads only ``nprobe`` cells; :func:`tune_nprobe` picks the smallest
  ``nprobe`` whose recall@5 against exact search reaches 0.98. The IVF index holds the ids itself,
  with a hash-table direct map for ``reconstruct`` and ``remove_ids``. It is deliberately *not*
  wrapped in ``IndexIDMap2``: that wrapper assumes removal renumbers the sub-index like a flat
  index does, which IVF does not, so after a ``remove_ids`` it returns wrong ids for the rest.

float16 halves memory, snapshot bytes and load time against float32, and a query is *faster*
(it reads half the bytes). Why not the other types FAISS offers (measured on synthetic catalogs
while choosing, 2026-11-30): 8-bit or PQ codes lose recall to near-ties (IVF-SQ8 stops at ~0.99
recall@5, PQ far lower without re-ranking on the full vectors), and HNSW cannot remove vectors,
which every catalog delete needs.
Indexes written by older versions (float32 flat and IVF) still load and take live updates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

__all__ = [
    "FLAT_MAX_FLOATS",
    "IndexKind",
    "NprobeChoice",
    "exact_top_k",
    "get_nprobe",
    "index_description",
    "index_kind_for",
    "ivf_nlist",
    "make_vector_index",
    "one_search_thread",
    "probe_queries",
    "recall_at_k",
    "resized_vector_index",
    "set_nprobe",
    "stored_vectors",
    "tune_nprobe",
]

FLAT_MAX_FLOATS = 25_000_000  # n × dim up to which exact search stays a few ms per query
TARGET_RECALL = 0.98
KMEANS_ITERATIONS = 10  # FAISS's default is 25; nprobe tuning absorbs the looser cells, builds take 2.5× less
POINTS_PER_CELL = 40  # k-means training sample per IVF cell (FAISS warns below 39)
IndexKind = Literal["flat", "ivf"]
Array = npt.NDArray[Any]
FLOAT16 = faiss.ScalarQuantizer.QT_fp16


def index_kind_for(dim: int, expected_size: int, *, flat_max_floats: int = FLAT_MAX_FLOATS) -> IndexKind:
    """``flat`` while ``expected_size × dim`` stays within ``flat_max_floats``, else ``ivf``."""
    return "flat" if expected_size * dim <= flat_max_floats else "ivf"


def ivf_nlist(n: int) -> int:
    """Cells for ``n`` vectors: ``4·√n``, but at most ``n / 39`` so k-means has ≥ 39 points a cell."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def make_vector_index(
    dim: int,
    expected_size: int,
    *,
    training_vectors: Array | None = None,
    flat_max_floats: int = FLAT_MAX_FLOATS,
    seed: int = 1234,
) -> faiss.Index:
    """An empty inner-product index for about ``expected_size`` vectors of ``dim`` dimensions.

    An IVF index (beyond the flat limit) comes trained on ``training_vectors`` (a sample of the
    vectors it will hold; at most :data:`POINTS_PER_CELL` per cell are used) with
    ``nprobe = nlist / 16``, a safe start for :func:`tune_nprobe`. Raises ValueError if an IVF
    index is needed and ``training_vectors`` is missing or has fewer than 39 per cell.
    """
    if index_kind_for(dim, expected_size, flat_max_floats=flat_max_floats) == "flat":
        return faiss.IndexIDMap2(faiss.IndexScalarQuantizer(dim, FLOAT16, faiss.METRIC_INNER_PRODUCT))
    nlist = ivf_nlist(expected_size)
    if training_vectors is None or len(training_vectors) < min(expected_size, 39 * nlist):
        raise ValueError(
            f"an IVF index for {expected_size} vectors is trained on a sample of them: pass "
            f"training_vectors (at least {min(expected_size, 39 * nlist)})"
        )
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim), dim, nlist, FLOAT16, faiss.METRIC_INNER_PRODUCT, False
    )  # by_residual=False: the cells hold the vectors themselves
    ivf.cp.seed = seed
    ivf.cp.niter = KMEANS_ITERATIONS
    rng = np.random.default_rng(seed)
    sample_size = min(len(training_vectors), POINTS_PER_CELL * nlist)
    sample = training_vectors[np.sort(rng.choice(len(training_vectors), sample_size, replace=False))]
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # SWIG, untyped
    ivf.nprobe = max(1, nlist // 16)
    return ivf


def _ivf(index: faiss.Index) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:  # not an IVF index
        return None


def get_nprobe(index: faiss.Index) -> int | None:
    """Cells searched per query; ``None`` for an exact (flat) index."""
    ivf = _ivf(index)
    return int(ivf.nprobe) if ivf is not None else None


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    """Search ``nprobe`` cells per query (clamped to ``1..nlist``); no effect on a flat index."""
    ivf = _ivf(index)
    if ivf is not None:
        ivf.nprobe = max(1, min(int(nprobe), int(ivf.nlist)))


def _code_size(index: faiss.Index) -> int:
    """Bytes each stored vector takes (4 × dim for float32, 2 × dim for float16)."""
    inner: Any = _ivf(index) or faiss.downcast_index(getattr(index, "index", index))
    return int(inner.code_size)


def index_description(index: faiss.Index) -> dict[str, Any]:
    """What ``GET /v1/stats`` can show: kind, vectors, dims, storage, and for IVF cells and nprobe."""
    ivf = _ivf(index)
    code_size = _code_size(index)
    out: dict[str, Any] = {
        "kind": "ivf" if ivf is not None else "flat",
        "faiss": type(index).__name__,
        "vectors": int(index.ntotal),
        "dim": int(index.d),
        "storage": {2: "float16", 4: "float32"}.get(code_size // max(1, int(index.d)), f"{code_size} bytes"),
        "metric": "inner_product" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2",
    }
    if ivf is not None:
        out |= {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}
    return out


def recall_at_k(found: Array, exact: Array, k: int) -> float:
    """Mean share of each query's exact top ``k`` ids that ``found`` (same shape) also returned."""
    hits = [len(set(f[:k].tolist()) & set(e[:k].tolist()) - {-1}) for f, e in zip(found, exact, strict=True)]
    expected = [len(set(e[:k].tolist()) - {-1}) for e in exact]
    return float(sum(hits) / max(1, sum(expected)))


@dataclass(frozen=True)
class NprobeChoice:
    nprobe: int | None  # None: exact index, nothing to tune
    recall: float  # recall@k against exact search at that nprobe, on the probe queries
    tried: dict[int, float]  # every nprobe measured -> its recall


def probe_queries(vectors: Array, *, count: int = 256, noise: float = 0.5, seed: int = 7) -> Array:
    """Stand-in queries when no real ones are at hand: random stored vectors plus Gaussian noise of
    norm ≈ ``noise``, re-normalised (a photo near, not equal to, a catalog image)."""
    rng = np.random.default_rng(seed)
    picked = vectors[rng.choice(len(vectors), min(count, len(vectors)), replace=False)].astype(np.float32)
    jitter = rng.standard_normal(picked.shape).astype(np.float32) * (noise / math.sqrt(picked.shape[1]))
    queries = np.ascontiguousarray(picked + jitter)
    faiss.normalize_L2(queries)
    return queries


def exact_top_k(vectors: Array, ids: Array, queries: Array, k: int) -> Array:
    """Each query's ``k`` best ids by exact inner product over ``vectors`` (stored under ``ids``)."""
    _, positions = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(vectors, dtype=np.float32),
        k,
        metric=faiss.METRIC_INNER_PRODUCT,
    )
    return np.where(positions >= 0, np.asarray(ids)[positions], -1)


def tune_nprobe(
    index: faiss.Index,
    vectors: Array,
    ids: Array,
    *,
    queries: Array | None = None,
    exact: Array | None = None,
    k: int = 5,
    target_recall: float = TARGET_RECALL,
) -> NprobeChoice:
    """Set the smallest ``nprobe`` (1, 2, 3, 4, 6, 8, 12, … up to nlist: steps of ×1.5) whose
    recall@``k`` against exact search over ``vectors`` (stored under ``ids``) reaches
    ``target_recall``; returns the choice.

    ``queries`` default to :func:`probe_queries` of ``vectors``; pass real query vectors when you
    have them, and their ``exact`` top-``k`` ids when already known (then ``vectors`` and ``ids``
    are not read). A flat index is exact: returns ``nprobe=None, recall=1.0``.
    """
    ivf = _ivf(index)
    if ivf is None:
        return NprobeChoice(None, 1.0, {})
    queries = probe_queries(vectors) if queries is None else np.ascontiguousarray(queries, dtype=np.float32)
    if exact is None:
        exact = exact_top_k(vectors, ids, queries, k)
    tried: dict[int, float] = {}
    nlist = int(ivf.nlist)
    powers = [2**i for i in range(nlist.bit_length() + 1)]
    candidates = sorted({min(n, nlist) for p in powers for n in (p, p * 3 // 2)})
    for nprobe in candidates:
        ivf.nprobe = nprobe
        _, found = index.search(queries, k)
        tried[nprobe] = recall_at_k(found, exact, k)
        if tried[nprobe] >= target_recall:
            break
    return NprobeChoice(int(ivf.nprobe), tried[int(ivf.nprobe)], tried)


def stored_vectors(index: faiss.Index, ids: list[int]) -> Array:
    """The vectors ``index`` holds under ``ids``, as float32 rows in that order."""
    if not ids:
        return np.zeros((0, int(index.d)), np.float32)
    if isinstance(index, faiss.IndexIDMap2) and int(index.ntotal) == len(ids):
        stored_ids = faiss.vector_to_array(index.id_map)
        rows = faiss.downcast_index(index.index).reconstruct_n(0, int(index.ntotal))  # one bulk decode
        order = np.argsort(stored_ids)
        wanted = np.asarray(ids, dtype=np.int64)
        positions = order[np.searchsorted(stored_ids, wanted, sorter=order)]
        if np.array_equal(stored_ids[positions], wanted):
            return np.ascontiguousarray(rows[positions])
    return np.stack([index.reconstruct(int(key)) for key in ids])


def resized_vector_index(
    current: faiss.Index, ids: list[int], dim: int, flat_max_floats: int = FLAT_MAX_FLOATS
) -> faiss.Index:
    """``current``'s vectors (under ``ids``) in a new index of the type :func:`make_vector_index`
    picks for that many; ``current`` itself if it is already that type (exact, float16)."""
    if index_kind_for(dim, len(ids), flat_max_floats=flat_max_floats) == "flat" and index_description(
        current
    ) | {"vectors": 0} == index_description(make_vector_index(dim, 0)):
        return current
    keys = np.asarray(ids, dtype=np.int64)
    vectors = stored_vectors(current, ids)
    resized = make_vector_index(dim, len(ids), training_vectors=vectors, flat_max_floats=flat_max_floats)
    if ids:
        resized.add_with_ids(vectors, keys)
        tune_nprobe(resized, vectors, keys)
    return resized


@contextmanager
def one_search_thread() -> Iterator[None]:
    """FAISS searches of the calling thread run on one OpenMP thread meanwhile (restored after).

    Why: a photo's search is one query over a small index, and an OpenMP team of two makes it wait
    for a second core — 0.1 ms alone, up to 40 ms on a busy machine (bench/job_ceiling.py), while
    the worker's other threads have that core's work to do. OpenMP's thread count is per calling
    thread, so index builds on other threads keep every core.
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
