"""Phone-sized photos: CPU ms per 12-megapixel JPEG for decode + thumbnail + quality + preprocess.

Usage: ``python bench/phone_photos.py [--photos 8] [--rounds 5]`` (prints only;
``bench/pipeline_throughput.py`` writes the figures). The photos are made from the dev set's
query photos (``../shared/bench/grocery``, else ``examples/grocery``): scaled to 4032×3024, with
sensor-like noise so they compress like a phone's (~2–4 MB at quality 90, not the few hundred kB
a smooth upscale gives). One core: torch and the worker's CPU stages on one thread.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEV_QUERIES = (
    REPO.parent / "shared" / "bench" / "grocery" / "queries",
    REPO / "examples" / "grocery" / "queries",
)
PHONE_SIZE = (4032, 3024)


def dev_queries() -> Path:
    """The dev set's query photos (``../shared``), else the repository's examples."""
    return next(path for path in DEV_QUERIES if path.is_dir())


def phone_jpegs(count: int, *, seed: int = 0, folder: Path | None = None) -> list[bytes]:
    """``count`` 12 MP JPEGs made from the photos in ``folder`` (default: :func:`dev_queries`),
    deterministically."""
    folder = folder or dev_queries()
    sources = sorted(folder.rglob("*.jpg"))[:count]
    rng = np.random.default_rng(seed)
    made = []
    for path in sources:
        big = np.asarray(Image.open(path).convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC))
        noisy = np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, format="JPEG", quality=90)
        made.append(buffer.getvalue())
    return made


def stage_ms(stages: dict[str, Callable[[Any], Any]], photos: list[bytes], rounds: int) -> dict[str, float]:
    """Median CPU ms per photo of each stage (this thread's CPU time, so other processes on a
    shared machine slow it less than wall time), run in order on each photo (each fed the
    previous stage's image when it returns one), on one thread; the first round is a warm-up."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {name: [] for name in stages}
    try:
        for n in range(rounds + 1):
            for data in photos:
                value: Any = data
                for name, stage in stages.items():
                    started = time.thread_time()
                    result = stage(value)
                    if n:
                        times[name].append(time.thread_time() - started)
                    if isinstance(result, Image.Image):
                        value = result
    finally:
        torch.set_num_threads(threads)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def stage_ms_of(photos: list[bytes], rounds: int) -> dict[str, float]:
    """:func:`stage_ms` of the worker's CPU stages (``pipeline_throughput.cpu_stages``) with
    ``serve``'s default settings."""
    from pipeline_throughput import cpu_stages

    from imagematch.app import build_services
    from imagematch.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp)))
        try:
            return stage_ms(cpu_stages(services), photos, rounds)
        finally:
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the stage costs as JSON only")
    parser.add_argument("--queries", type=Path, help="photos to make them from (default: the dev set)")
    args = parser.parse_args()
    photos = phone_jpegs(args.photos, folder=args.queries)
    costs = stage_ms_of(photos, args.rounds)
    if args.json:
        print(json.dumps(costs))
        return
    print(f"{len(photos)} photos, {statistics.mean(map(len, photos)) / 1e6:.1f} MB each on average")
    for name, ms in costs.items():
        print(f"  {name}: {ms:.1f} ms")
    print(f"  total: {sum(costs.values()):.1f} ms")


if __name__ == "__main__":
    main()
