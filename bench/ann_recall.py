"""ANN index by catalog size: exact (flat) vs IVF on synthetic clustered unit vectors.

Usage: ``python bench/ann_recall.py [--sizes 10000 50000 200000] [--dim 512] [--no-write]``.
For each size it builds both kinds with :mod:`imagematch.vector_index` (IVF: trained, nprobe tuned
on probe queries to recall@5 ≥ 0.98), then measures one-query-at-a-time latency on one thread and
recall@5 against exact search on held-out queries. Writes only its own section of BENCHMARKS.md
(between ``<!-- ann:start -->`` and ``<!-- ann:end -->``). Asserts nothing; a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
from markdown_sections import replace_section  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imagematch.vector_index import (  # noqa: E402
    FLAT_MAX_FLOATS,
    get_nprobe,
    index_description,
    index_kind_for,
    make_vector_index,
    recall_at_k,
    tune_nprobe,
)

IMAGES_PER_PRODUCT = 4
CATEGORIES = 100


@dataclass
class Row:
    size: int
    kind: str
    picked: bool
    build_s: float
    nprobe: str
    query_ms: float
    recall: float


def clustered_catalog(n: int, dim: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` catalog image vectors (products of 4 images in 100 categories) and ``queries`` photo
    vectors (a product's centre plus more noise than its catalog images), all unit length."""
    rng = np.random.default_rng(seed)
    scale = 1 / math.sqrt(dim)  # a N(0, scale²) vector has norm ≈ 1

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        faiss.normalize_L2(x)
        return x

    categories = rng.standard_normal((CATEGORIES, dim), dtype=np.float32) * scale
    n_products = max(1, n // IMAGES_PER_PRODUCT)
    products = unit(
        categories[rng.integers(0, CATEGORIES, n_products)]
        + 0.5 * scale * rng.standard_normal((n_products, dim), dtype=np.float32)
    )
    owner = np.arange(n) % n_products
    images = unit(products[owner] + 0.5 * scale * rng.standard_normal((n, dim), dtype=np.float32))
    asked = rng.integers(0, n_products, queries)
    photos = unit(products[asked] + 0.8 * scale * rng.standard_normal((queries, dim), dtype=np.float32))
    return images, photos


def query_latencies_ms(index: faiss.Index, queries: np.ndarray, k: int = 5, warm: int = 5) -> np.ndarray:
    """Milliseconds of each query, one at a time (the API's /v1/match), on one thread, after
    ``warm`` queries to warm the caches."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.search(queries[:warm], k)
        times = []
        for query in queries:
            started = time.perf_counter()
            index.search(query.reshape(1, -1), k)
            times.append(time.perf_counter() - started)
    finally:
        faiss.omp_set_num_threads(threads)
    return 1000 * np.asarray(times)


def query_ms(index: faiss.Index, queries: np.ndarray, k: int = 5) -> float:
    """Median milliseconds of one query at a time."""
    return float(np.median(query_latencies_ms(index, queries, k)))


def measure(size: int, dim: int, n_queries: int, seed: int) -> list[Row]:
    vectors, queries = clustered_catalog(size, dim, n_queries, seed)
    ids = np.arange(size, dtype=np.int64)
    picked = index_kind_for(dim, size)
    rows = []

    started = time.perf_counter()
    flat = make_vector_index(dim, size, flat_max_floats=size * dim)
    flat.add_with_ids(vectors, ids)
    flat_s = time.perf_counter() - started
    _, exact = flat.search(queries, 5)
    rows.append(Row(size, "flat", picked == "flat", flat_s, "–", query_ms(flat, queries), 1.0))

    started = time.perf_counter()
    ivf = make_vector_index(dim, size, training_vectors=vectors, flat_max_floats=0)
    ivf.add_with_ids(vectors, ids)
    tune_nprobe(ivf, vectors, ids)  # on its own probe queries, not the measured ones
    ivf_s = time.perf_counter() - started
    _, found = ivf.search(queries, 5)
    nlist = index_description(ivf)["nlist"]
    rows.append(
        Row(
            size,
            "ivf",
            picked == "ivf",
            ivf_s,
            f"{get_nprobe(ivf)} / {nlist}",
            query_ms(ivf, queries),
            recall_at_k(found, exact, 5),
        )
    )
    return rows


def markdown(rows: list[Row], dim: int, n_queries: int) -> str:
    lines = [
        "## ANN index by catalog size (`bench/ann_recall.py`)",
        "",
        f"Written by `bench/ann_recall.py` on {datetime.now(UTC):%Y-%m-%d} ({platform.machine()}, "
        f"{os.cpu_count()} cores). Synthetic clustered unit vectors, {dim}-d: products of "
        f"{IMAGES_PER_PRODUCT} images in {CATEGORIES} categories; {n_queries} query photos per size "
        "(a product plus noise), held out from the nprobe tuning. *build s*: add (IVF: + k-means "
        "training + nprobe tuning, 2 threads). *query ms*: median of one query at a time on one "
        "thread, as `/v1/match` searches. *recall@5*: share of the exact top-5 image ids found.",
        "",
        "| vectors | index | factory picks it | build s | nprobe / nlist | query ms | recall@5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size:,} | {r.kind} | {'yes' if r.picked else ''} | {r.build_s:.2f} | {r.nprobe} | "
            f"{r.query_ms:.2f} | {r.recall:.3f} |"
        )
    lines += [
        "",
        f"`make_vector_index` keeps exact search while vectors × dims ≤ {FLAT_MAX_FLOATS:,} "
        f"({FLAT_MAX_FLOATS // dim:,} vectors at {dim}-d, {FLAT_MAX_FLOATS // 1792:,} at 1792-d), "
        "where an exact query costs at most ~7 ms on one core (the 50,000 row); beyond it, IVF "
        "answers in a fraction of that at recall@5 ≥ 0.98 and exact search grows linearly.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 50_000, 200_000])
    parser.add_argument("--dim", type=int, default=512, help="512: OpenCLIP ViT-B/16, the production model")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    rows: list[Row] = []
    for size in args.sizes:
        for row in measure(size, args.dim, args.queries, args.seed):
            rows.append(row)
            print(
                f"{row.size:>8,} {row.kind:<4} {'*' if row.picked else ' '} build {row.build_s:7.2f} s  "
                f"nprobe {row.nprobe:<10} query {row.query_ms:7.2f} ms  recall@5 {row.recall:.3f}",
                flush=True,
            )
    if not args.no_write:
        path = REPO / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(replace_section(text, "ann", markdown(rows, args.dim, args.queries)))
        print(f"wrote the ann section of {path}")


if __name__ == "__main__":
    main()
