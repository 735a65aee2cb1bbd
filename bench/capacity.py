"""Capacity plan for 10k / 100k / 1M / 5M catalog images, from measured rates and sizes.

Usage: ``python bench/capacity.py [--model SPEC] [--device cpu|cuda] [--images 16] [--no-write]``.

- **Embedding rate per container**: measured here, by embedding ``--images`` catalog images of
  ``examples/grocery`` with the catalog recipe (every view of each image, as a rebuild's worker
  does in ``index_builder.fanout.embed_chunk``). Run it on the GPU you deploy on
  (``--device cuda --model open_clip:…``) to get that container's rate; build time on N
  containers is then stated as rate × N (chunks are independent; the one writer that fits the
  whitening and publishes is timed separately by ``bench/search_latency.py``).
- **Index memory, load, query latency**: the rows of ``bench/search_results.json`` for the
  production dimension (512), written by ``bench/search_latency.py``.
- **Volume bytes**: the embedding cache (float16 vector per image, plus views of a ≤ 4,096-image
  whitening sample: ``index_builder/cache.py``) + the snapshot (index file + ~250 bytes of JSON
  metadata per image) × the snapshots kept (2 counted: the served one and the next).
- **Postgres**: bytes per processed photo from ``bench/ledger_results.json``
  (``bench/ledger_scale.py``), for a year at 10k photos a day.

- **Photo jobs per container** (``--device cuda``): ``match_image`` jobs end to end through
  ``serve``'s workers and a SQLite ledger with the model on the GPU, ``IMAGEMATCH_BATCH`` per
  forward pass (``bench/job_ceiling.py``'s loop with the real model). Without a GPU the table says
  it is an estimate: the CPU-side ceiling of ``bench/job_ceiling.py`` bounds it.

Writes the table into README.md and BENCHMARKS.md, between ``capacity`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from machine import machine_line
from markdown_sections import replace_section

from imagematch.config import Settings
from imagematch.embedder import load_embedder
from imagematch.images import ImageLimits, sha256_hex
from index_builder.fanout import EmbedChunk, ImageTask, embed_chunk

REPO = Path(__file__).resolve().parents[1]
SIZES = (10_000, 100_000, 1_000_000, 5_000_000)
CONTAINERS = (1, 10, 50)
PRODUCTION_DIM = 512
FIT_SAMPLE_IMAGES = 4096
SNAPSHOTS_COUNTED = 2
META_BYTES_PER_IMAGE = 250
PHOTOS_PER_YEAR = 10_000 * 365
HEADING = "## Capacity plan (`bench/capacity.py`)"


def embedding_rate(model: str, device: str, count: int) -> tuple[float, int, int]:
    """(catalog images per second, views per image, vector dims) of one container here."""
    settings = Settings()
    embedder = load_embedder(model, device=device, batch_size=settings.batch_size)
    paths = sorted((REPO / "examples" / "grocery" / "catalog" / "images").glob("*.jpg"))[: count + 1]
    data = {str(path): path.read_bytes() for path in paths}
    tasks = tuple(ImageTask("p", uri, sha256_hex(raw)) for uri, raw in data.items())

    def run(part: tuple[ImageTask, ...]) -> dict[str, object]:
        chunk = EmbedChunk("bench", part)
        result = embed_chunk(
            chunk,
            embedder=embedder,
            read_bytes=data.__getitem__,
            limits=ImageLimits(settings.max_image_bytes, settings.max_image_pixels),
            views=settings.catalog_views,
        )
        return dict(result.views)

    run(tasks[:1])  # warm-up: first-call allocations, lazy imports
    started = time.perf_counter()
    views = run(tasks[1:])
    seconds = time.perf_counter() - started
    shape = next(iter(views.values())).shape  # type: ignore[attr-defined]
    return len(views) / seconds, int(shape[0]), int(shape[1])


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f} GB" if value < 10e9 else f"{value / 1e9:.0f} GB"


def photo_jobs_rate(model: str, device: str, seconds: float) -> float:
    """Photo jobs/s of one container with ``model`` on ``device`` (see the module docstring)."""
    import tempfile

    from job_ceiling import jobs_per_second

    with tempfile.TemporaryDirectory(prefix="capacity-jobs-") as tmp:
        rate, _ = jobs_per_second(Path(tmp), None, seconds, model=model, device=device)
    return rate


def table(rate: float, views: int, dim: int, model: str, device: str, jobs: float | None = None) -> str:
    search_path = REPO / "bench" / "search_results.json"
    rows = json.loads(search_path.read_text()) if search_path.exists() else []
    search = {row["size"]: row for row in rows if row["dim"] == PRODUCTION_DIM}
    ledger_path = REPO / "bench" / "ledger_results.json"
    per_photo = json.loads(ledger_path.read_text())["bytes_per_job"] if ledger_path.exists() else None
    header = " | ".join(f"build on {n} container{'s' if n > 1 else ''}" for n in CONTAINERS)
    lines = [
        f"| catalog images | {header} | Volume | index memory | load | query p50 / p99 |",
        "|---|" + "---|" * (len(CONTAINERS) + 4),
    ]
    for size in SIZES:
        row = search.get(size)
        cache = size * (2 * PRODUCTION_DIM + 60) + min(size, FIT_SAMPLE_IMAGES) * views * 2 * PRODUCTION_DIM
        image_index = row["index_mb"] * 2**20 if row else size * (2 * PRODUCTION_DIM + 8)  # float16 + id
        index_bytes = 1.25 * image_index  # + one vector per product (4 images each)
        volume = cache + SNAPSHOTS_COUNTED * (index_bytes + size * META_BYTES_PER_IMAGE)
        builds = " | ".join(_duration(size / (rate * n)) for n in CONTAINERS)
        memory = f"{row['rss_mb'] / 1024:.2f} GB" if row else "not measured"
        latency = f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} ms ({row['kind']})" if row else "not measured"
        load = f"{row['load_s']:.2f} s" if row else "–"
        lines.append(f"| {size:,} | {builds} | {_gb(volume)} | {memory} | {load} | {latency} |")
    year = (
        "not measured (run `bench/ledger_scale.py`)"
        if per_photo is None
        else (
            f"{per_photo:,.0f} bytes per processed photo → "
            f"**{_gb(per_photo * PHOTOS_PER_YEAR)} for a year at 10k photos a day** (a Zendesk "
            "photo adds its ticket-scan and note jobs, up to ~2× that; archiving finished jobs "
            "keeps predictions and drops attempt rows)"
        )
    )
    gpu_note = (
        "**An estimate for GPU containers**: no GPU was measured here — run "
        "`python bench/capacity.py --device cuda --model open_clip:ViT-B-16/…` on one and the "
        "table and the photo-jobs rate follow. Until then a GPU container's photo jobs/s is bounded "
        "by its CPU side: the free-model ceiling of `bench/job_ceiling.py` (BENCHMARKS.md, pipeline). "
        if jobs is None
        else f"Photo jobs, measured: **{jobs:.1f} jobs/s per container** on {device} "
        f"(`{model}`, batches of `IMAGEMATCH_BATCH`, SQLite ledger). "
    )
    return "\n".join(
        [
            machine_line(),
            "",
            f"Embedding rate of one container, measured: **{rate:.2f} catalog images/s** with `{model}` "
            f"on {device} ({views} views of {dim} dims per image, the catalog recipe). Build time on N "
            "containers = images ÷ (rate × N): measured per-container rate × N, not measured at N. "
            f"{gpu_note}Index memory, load and query latency: 512-d (production) rows of "
            "`bench/search_results.json`, one query on one thread. Volume: embedding cache + "
            f"{SNAPSHOTS_COUNTED} snapshots, at 512-d.",
            "",
            *lines,
            "",
            f"Postgres: {year}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=Settings().model)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=8 if os.environ.get("BENCH_QUICK") == "1" else 16)
    parser.add_argument("--jobs-seconds", type=float, default=20.0, help="photo jobs timed (GPU only)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        os.environ.setdefault("IMAGEMATCH_BATCH", "16")
    rate, views, dim = embedding_rate(args.model, args.device, args.images)
    jobs = (
        photo_jobs_rate(args.model, args.device, args.jobs_seconds)
        if args.device.startswith("cuda")
        else None
    )
    body = table(rate, views, dim, args.model, args.device, jobs)
    print(body)
    if not args.no_write:
        # The README's own heading introduces the table there; BENCHMARKS.md gets one.
        for name, text in (("README.md", body), ("BENCHMARKS.md", f"{HEADING}\n\n{body}")):
            path = REPO / name
            path.write_text(replace_section(path.read_text(), "capacity", text))


if __name__ == "__main__":
    main()
