"""Pipeline throughput ÷ raw model forward throughput, same batch size, same run.

Usage: ``python bench/pipeline_throughput.py [--jobs 96] [--no-write]``.

*Pipeline*, as served: ``match_image`` jobs (query photos of ``examples/grocery`` stored as blobs)
run by a worker — claim, read the blob, decode, preprocess, embed, search a 1,000-product synthetic
snapshot, write the prediction to the SQLite ledger. A worker takes one job at a time, so the batch
is 1. Also batch 16 (``settings.batch_size``: ``Matcher.match_images``, as ``imagematch match`` with
many files): decode 16 photos, embed and search them together, log 16 predictions.
*Raw forward*: the default model's forward pass alone on an already preprocessed batch of the same
size, in the same process. Goal: pipeline ÷ forward ≥ 0.9. Writes the ``pipeline`` section of
BENCHMARKS.md; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from machine import machine_line
from markdown_sections import replace_section
from serve_startup import publish_snapshot

from imagematch.app import build_services
from imagematch.blobs import BlobStore
from imagematch.config import Settings
from imagematch.images import decode_image
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import NewJob, NewPrediction

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "examples" / "grocery" / "queries"


def forward_rate(embedder: Any, photos: list[bytes], batch: int, seconds: float) -> float:
    """Images/s of the model's forward pass alone on a preprocessed batch of ``batch`` photos."""
    images = [decode_image(p, max_bytes=50_000_000, max_pixels=100_000_000) for p in photos[:batch]]
    tensor = torch.stack([embedder._preprocess(im) for im in images])  # the raw model
    done, started = 0, time.perf_counter()
    with torch.inference_mode():
        embedder._forward(tensor)  # warm-up
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            embedder._forward(tensor)
            done += batch
    return done / (time.perf_counter() - started)


def worker_rate(services: Any, photos: list[bytes], jobs: int) -> float:
    """Images/s of ``match_image`` jobs through a worker (batch 1, as served)."""
    blobs = BlobStore(services.settings.data_dir / "blobs")
    for n in range(jobs + 2):
        digest = blobs.put(photos[n % len(photos)])
        new = NewJob(
            source="bench", idempotency_key=f"bench:{n}", payload={"image": image_ref_for_blob(digest)}
        )
        services.ledger.submit(new)
    worker = services.make_worker()
    worker.drain(max_jobs=2)  # warm-up
    started = time.perf_counter()
    done = worker.drain(max_jobs=jobs)
    return done / (time.perf_counter() - started)


def batch_rate(services: Any, photos: list[bytes], batch: int, rounds: int) -> float:
    """Images/s of decode → embed → search → log for ``batch`` photos at a time."""
    limits = services.limits
    ledger = services.ledger
    done, started = 0, time.perf_counter()
    for r in range(rounds + 1):
        if r == 1:  # the first round warms up
            done, started = 0, time.perf_counter()
        chunk = [photos[(r * batch + i) % len(photos)] for i in range(batch)]
        images = [decode_image(p, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels) for p in chunk]
        results = services.matcher.match_images(images)
        for i, result in enumerate(results):
            job, _ = ledger.submit(NewJob(source="bench", idempotency_key=f"batch:{r}:{i}"))
            claimed = ledger.claim_job(job.id, "bench", lease_seconds=60)
            assert claimed is not None
            ledger.complete(
                job.id, "bench", NewPrediction.model_validate({**result.model_dump(), "source": "bench"})
            )
        done += batch
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--jobs", type=int, default=24 if quick else 96)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted(QUERIES.glob("*.jpg"))[:64]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipeline-") as tmp:
        settings = Settings(data_dir=Path(tmp), workers=0)
        services = build_services(settings)
        embedder = services.embedder
        publish_snapshot(Path(tmp), 1000, embedder.dim, embedder.embedder_id)
        seconds = 5 if quick else 15
        raw1 = forward_rate(embedder, photos, 1, seconds)
        served = worker_rate(services, photos, args.jobs)
        rows.append(("1 (a worker's `match_image` job, as served)", served, raw1))
        print(f"batch 1: pipeline {served:.1f} img/s, forward {raw1:.1f} img/s", flush=True)
        batch = settings.batch_size
        raw16 = forward_rate(embedder, photos, batch, seconds)
        batched = batch_rate(services, photos, batch, max(2, args.jobs // batch))
        rows.append((f"{batch} (`Matcher.match_images`)", batched, raw16))
        print(f"batch {batch}: pipeline {batched:.1f} img/s, forward {raw16:.1f} img/s", flush=True)
        services.close()
    if not args.no_write:
        path = REPO / "BENCHMARKS.md"
        path.write_text(replace_section(path.read_text(), "pipeline", markdown(rows, embedder.embedder_id)))


def markdown(rows: list[tuple[str, float, float]], embedder_id: str) -> str:
    lines = [
        "## Pipeline throughput vs the model's forward pass (`bench/pipeline_throughput.py`)",
        "",
        machine_line(),
        "",
        f"`{embedder_id}` on CPU, query photos of `examples/grocery` (phone JPEGs). *Pipeline*: claim or "
        "take the photos, decode, preprocess, embed, search a 1,000-product snapshot, write the "
        "prediction to the SQLite ledger. *Forward*: the model alone on a preprocessed batch of the "
        "same size, same process. Goal: ratio ≥ 0.9.",
        "",
        "| batch | pipeline img/s | forward img/s | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    for name, pipeline, forward in rows:
        ok = "met" if pipeline / forward >= 0.9 else "**missed**"
        lines.append(f"| {name} | {pipeline:.1f} | {forward:.1f} | {pipeline / forward:.2f} | ≥ 0.9 ({ok}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
