"""Cache embeddings for the study: catalog views (the product's 14 framings) and every query photo.

`python extract.py <model spec> [--views multi|single]` writes data/research/<slug>.npz with
`catalog` (243, V, d) raw view vectors, `queries` (782, d), `query_seconds` (embed time incl. decode).
Uses the product code (load_embedder, catalog_views), so vectors are exactly what the product makes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from imagematch.embedder import load_embedder
from imagematch.images import decode_image
from imagematch.models import CatalogViews
from imagematch.representation import embed_catalog_images
from imagematch.runtime import tune_allocator

REPO = Path(__file__).resolve().parents[3]
GROCERY = Path("/work/shared/bench/grocery")
CACHE = REPO / "data" / "research"


def catalog_rows() -> list[tuple[str, Path]]:
    products = json.loads((GROCERY / "catalog" / "products.json").read_text())
    return [(p["id"], GROCERY / "catalog" / image) for p in products for image in p["images"]]


def query_rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in (GROCERY / "queries.jsonl").read_text().splitlines() if line]


def load(path: Path):
    return decode_image(path.read_bytes(), max_bytes=50_000_000, max_pixels=100_000_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--views", default="multi")
    parser.add_argument("--queries-from", type=Path, help="take the query vectors from this npz (same spec)")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(2)
    slug = args.spec.replace(":", "_").replace("/", "_").replace("@", "_").replace("+", "__")
    out = CACHE / f"{slug}_{args.views}.npz"
    embedder = load_embedder(args.spec)
    started = time.perf_counter()
    queries = [np.load(args.queries_from)["queries"]] if args.queries_from else []
    rows = query_rows()
    for start in range(0, 0 if args.queries_from else len(rows), 16):
        images = [load(GROCERY / r["image"]) for r in rows[start : start + 16]]
        queries.append(embedder.embed(images))
    query_seconds = time.perf_counter() - started
    print(f"queries {len(rows)} in {query_seconds:.1f}s", flush=True)
    np.save(out.with_suffix(".queries.npy"), np.concatenate(queries))  # keep them if the catalog pass dies
    catalog = []
    for start in range(0, len(cat := catalog_rows()), 8):
        images = [load(path) for _, path in cat[start : start + 8]]
        catalog += embed_catalog_images(embedder, images, CatalogViews(args.views))
    np.savez(out, catalog=np.stack(catalog), queries=np.concatenate(queries), query_seconds=query_seconds)
    print(f"wrote {out} in {time.perf_counter() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
