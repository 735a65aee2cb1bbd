"""Incremental rebuild: with 1 % of the catalog's images changed, a rebuild ÷ a full rebuild.

Usage: ``python bench/incremental_rebuild.py [--images 200] [--no-write]``.

A catalog of ``--images`` images (3 per product) is made from ``examples/grocery``'s photos, each
copy made distinct (a few bytes after the JPEG's end marker: a new SHA-256, the same picture).
*Full*: ``rebuild_catalog_index`` with an empty embedding cache (decode, 14-view embedding, whitening
fit, index, publish). Then 1 % of the images get new bytes and the catalog is rebuilt with the cache
of the first build: only those are embedded. Goal: incremental ÷ full ≤ 0.05. The model is loaded
once beforehand (not timed). Writes the ``rebuild`` section of BENCHMARKS.md; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from machine import machine_line
from markdown_sections import replace_section

from imagematch.app import build_services
from imagematch.config import Settings
from index_builder.build import rebuild_catalog_index

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "grocery" / "catalog"
PER_PRODUCT = 3


def make_catalog(root: Path, images: int) -> list[Path]:
    """``products.json`` and ``images`` distinct image files under ``root``; returns the files."""
    sources = sorted((SAMPLE / "images").glob("*.jpg"))
    (root / "images").mkdir(parents=True)
    files, products = [], []
    for n in range(images):
        path = root / "images" / f"img-{n:05d}.jpg"
        path.write_bytes(sources[n % len(sources)].read_bytes() + f"copy {n}".encode())
        files.append(path)
    for p in range(0, images, PER_PRODUCT):
        chunk = files[p : p + PER_PRODUCT]
        products.append(
            {
                "id": f"P{p // PER_PRODUCT:05d}",
                "name": f"product {p}",
                "images": [f"images/{f.name}" for f in chunk],
            }
        )
    (root / "products.json").write_text(json.dumps(products))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--images", type=int, default=100 if quick else 200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rebuild-") as tmp:
        catalog = Path(tmp) / "catalog"
        files = make_catalog(catalog, args.images)
        services = build_services(Settings(data_dir=Path(tmp) / "data"))
        source = str(catalog / "products.json")
        started = time.perf_counter()
        _, full_report = rebuild_catalog_index(services, source)
        full_s = time.perf_counter() - started
        changed = max(1, round(args.images / 100))
        for path in files[:: len(files) // changed][:changed]:
            path.write_bytes(path.read_bytes() + b" changed")
        started = time.perf_counter()
        _, inc_report = rebuild_catalog_index(services, source)
        inc_s = time.perf_counter() - started
        services.close()
        shutil.rmtree(catalog, ignore_errors=True)
    print(
        f"full {full_s:.1f} s ({full_report.embedded} embedded), incremental {inc_s:.2f} s "
        f"({inc_report.embedded} embedded, {inc_report.cached} cached): {inc_s / full_s:.3f}",
        flush=True,
    )
    if not args.no_write:
        ok = "met" if inc_s / full_s <= 0.05 else "**missed**"
        body = "\n".join(
            [
                "## Incremental rebuild (`bench/incremental_rebuild.py`)",
                "",
                machine_line(),
                "",
                f"A {args.images}-image catalog ({PER_PRODUCT} a product, distinct copies of the sample "
                "photos), default recipe (14-view embeddings, within-product whitening), "
                "`rebuild_catalog_index` with the model already loaded.",
                "",
                "| rebuild | images embedded | from cache | seconds |",
                "|---|---|---|---|",
                f"| full (empty embedding cache) | {full_report.embedded} | {full_report.cached} "
                f"| {full_s:.1f} |",
                f"| {changed} image(s) changed (1 %) | {inc_report.embedded} | {inc_report.cached} "
                f"| {inc_s:.2f} |",
                "",
                f"Incremental ÷ full: **{inc_s / full_s:.3f}** (goal ≤ 0.05: {ok}).",
            ]
        )
        path = REPO / "BENCHMARKS.md"
        path.write_text(replace_section(path.read_text(), "rebuild", body))


if __name__ == "__main__":
    main()
