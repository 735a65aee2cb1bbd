"""Search at size: build time, memory, load time, one query's p50/p99 and recall@5 vs exact.

Usage: ``python bench/search_latency.py [--runs 1792:100000 512:1000000 …] [--no-write]``.
Each run is ``dim:vectors`` of a synthetic catalog (``bench/synthetic_catalog.py``: products of 4
images, generated in chunks, so 5M vectors never sit in memory as float32). The index is the one
:func:`imagematch.vector_index.make_vector_index` picks for that size (float16 flat, or float16
IVF trained on a sample with ``nprobe`` tuned to recall@5 ≥ 0.98 on its own probe queries); then
300 held-out query photos are searched one at a time on one thread, as ``/v1/match`` does.

*build s*: k-means training + adding every vector + nprobe tuning, on all cores (generating the
vectors and the exact answers is not counted). *index MB*: the written index file (what a
snapshot holds on the Volume). *load s* and *RSS MB*: ``faiss.read_index`` of that file in a fresh
process, and what it added to the process's resident memory. Goal: p50 ≤ 5 ms, p99 ≤ 10 ms at
recall@5 ≥ 0.98 (1M vectors on 2 cores), and 5M that fit a GPU container's memory.

Results are kept per ``dim:vectors`` in ``bench/search_results.json``, so a default run (1792:100000
and 512:1000000; ``BENCH_QUICK=1``: 1792:20000) keeps the rows of the big runs made on request.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from ann_recall import query_latencies_ms
from machine import machine_line
from markdown_sections import replace_section
from synthetic_catalog import SyntheticCatalog, TopK

from imagematch.vector_index import (
    POINTS_PER_CELL,
    index_description,
    index_kind_for,
    ivf_nlist,
    make_vector_index,
    probe_queries,
    recall_at_k,
    tune_nprobe,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("search_results.json")
QUERIES = 300
PROBES = 256


@dataclass
class Row:
    dim: int
    size: int
    kind: str
    storage: str
    nprobe: str
    build_s: float
    index_mb: float
    load_s: float
    rss_mb: float
    p50_ms: float
    p99_ms: float
    recall: float
    measured: str

    @property
    def met(self) -> bool:
        return self.p50_ms <= 5 and self.p99_ms <= 10 and self.recall >= 0.98


def _training_sample(catalog: SyntheticCatalog) -> tuple[np.ndarray | None, np.ndarray]:
    """A uniform sample big enough to train the IVF cells (``None`` for a flat index), and the
    probe queries ``tune_nprobe`` uses (stored vectors plus noise, as in production)."""
    rng = np.random.default_rng(catalog.seed)
    ivf = index_kind_for(catalog.dim, catalog.size) == "ivf"
    share = min(1.0, POINTS_PER_CELL * ivf_nlist(catalog.size) / catalog.size) if ivf else 0.0
    sample, probe_pool = [], []
    for _, vectors in catalog.chunks():
        sample.append(vectors[rng.random(len(vectors)) < share])
        probe_pool.append(vectors[rng.choice(len(vectors), min(len(vectors), PROBES), replace=False)])
    probes = probe_queries(np.vstack(probe_pool), count=PROBES)
    return (np.vstack(sample) if ivf else None), probes


def _load_in_fresh_process(path: Path) -> tuple[float, float]:
    """Seconds to ``faiss.read_index`` the file, and the resident MB it added, in a new process."""
    code = (
        "import time, resource, faiss\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()\n"
        f"before = rss(); t = time.perf_counter(); index = faiss.read_index({str(path)!r})\n"
        "print(time.perf_counter() - t, (rss() - before) / 2**20)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900
    )
    load_s, rss_mb = out.stdout.split()
    return float(load_s), float(rss_mb)


def measure(dim: int, size: int) -> Row:
    catalog = SyntheticCatalog(size, dim, seed=size + dim)
    queries = catalog.queries(QUERIES, seed=1)
    sample, probes = _training_sample(catalog)
    exact, probe_exact = TopK(queries, 5), TopK(probes, 5)

    build_s = 0.0
    started = time.perf_counter()
    index = make_vector_index(dim, size, training_vectors=sample)
    build_s += time.perf_counter() - started
    del sample
    for ids, vectors in catalog.chunks():
        started = time.perf_counter()
        index.add_with_ids(vectors, ids)
        build_s += time.perf_counter() - started
        exact.add(ids, vectors)
        probe_exact.add(ids, vectors)
    started = time.perf_counter()
    tune_nprobe(
        index, np.zeros((0, dim), np.float32), np.zeros(0, np.int64), queries=probes, exact=probe_exact.ids
    )
    build_s += time.perf_counter() - started

    _, found = index.search(queries, 5)
    times = query_latencies_ms(index, queries, warm=10)
    info = index_description(index)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "images.faiss"
        faiss.write_index(index, str(path))
        index_mb = path.stat().st_size / 2**20
        del index
        load_s, rss_mb = _load_in_fresh_process(path)
    row = Row(
        dim=dim,
        size=size,
        kind=info["kind"],
        storage=info["storage"],
        nprobe=f"{info['nprobe']} / {info['nlist']}" if info["kind"] == "ivf" else "–",
        build_s=round(build_s, 1),
        index_mb=round(index_mb, 1),
        load_s=round(load_s, 2),
        rss_mb=round(rss_mb, 1),
        p50_ms=round(float(np.percentile(times, 50)), 2),
        p99_ms=round(float(np.percentile(times, 99)), 2),
        recall=round(recall_at_k(found, exact.ids, 5), 3),
        measured=machine_line().removeprefix("Measured ").split(" on ")[0],
    )
    print(row, flush=True)
    return row


def markdown(rows: list[Row]) -> str:
    lines = [
        "## Search at size (`bench/search_latency.py`)",
        "",
        f"On {machine_line().split(' on ', 1)[1]} Synthetic clustered unit vectors (products of 4 "
        "images); the index `make_vector_index` picks for the size, float16, nprobe tuned on its own "
        f"probe queries; {QUERIES} held-out query photos searched one at a time on one thread. "
        "*build s*: k-means training + add + nprobe tuning on 2 cores. *index MB*: the index file "
        "(Volume bytes); *load s*, *RSS MB*: reading it in a fresh process. Goal: p50 ≤ 5 ms, "
        "p99 ≤ 10 ms at recall@5 ≥ 0.98.",
        "",
        "| dim | vectors | index | nprobe / nlist | build s | index MB | load s | RSS MB | p50 ms "
        "| p99 ms | recall@5 | goal | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.dim, r.size)):
        lines.append(
            f"| {r.dim} | {r.size:,} | {r.kind} ({r.storage}) | {r.nprobe} | {r.build_s:.1f} | "
            f"{r.index_mb:,.0f} | {r.load_s:.2f} | {r.rss_mb:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.recall:.3f} | {'met' if r.met else '**missed**'} | {r.measured} |"
        )
    lines += [
        "",
        "512-d is OpenCLIP ViT-B/16 (production), 1792-d the offline default. Rows are kept per "
        "dim and size in `bench/search_results.json`; the big ones run on request "
        "(`--runs 1792:1000000 512:5000000`, ~20 GB of RAM free and 10–30 minutes on 2 cores).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    default = ["1792:20000"] if quick else ["1792:100000", "512:1000000"]
    parser.add_argument("--runs", nargs="+", default=default, help="dim:vectors, e.g. 512:5000000")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))
    kept = (
        {(r["dim"], r["size"]): Row(**r) for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    )
    for run in args.runs:
        dim, size = (int(part) for part in run.split(":"))
        kept[(dim, size)] = measure(dim, size)
    if not args.no_write:
        RESULTS.write_text(json.dumps([asdict(r) for r in kept.values()], indent=1) + "\n")
        path = REPO / "BENCHMARKS.md"
        path.write_text(replace_section(path.read_text(), "search", markdown(list(kept.values()))))


if __name__ == "__main__":
    main()
