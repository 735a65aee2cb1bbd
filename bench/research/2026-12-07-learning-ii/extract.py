"""Cache the vectors this study needs, made by the product's own code.

`python extract.py <model spec> [--no-multi]` writes data/research/learning-ii/<slug>.npz with:
- `catalog` (243, 14, d): the catalog images' 14 framings (`catalog_views`, as the product embeds them);
- `queries` (782, d): one vector per query photo (what a served job stores);
- `flipped` (782, d): the mirrored photo (for query-side test-time augmentation);
- `multi` (782, 14, d): each query photo's 14 framings, as if it were a catalog image (for learned
  references embedded like catalog images; only `train` rows are filled, the rest are zero).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imagematch.embedder import load_embedder
from imagematch.images import ImageLimits
from imagematch.models import CatalogViews
from imagematch.representation import catalog_views
from imagematch.runtime import tune_allocator

REPO = Path(__file__).resolve().parents[3]
GROCERY = REPO.parent / "shared" / "bench" / "grocery"
CACHE = REPO / "data" / "research" / "learning-ii"
LIMITS = ImageLimits(max_bytes=50_000_000, max_pixels=100_000_000)


def load(path: Path) -> Image.Image:
    return LIMITS.decode(path.read_bytes())


def embed_all(embedder, images: list[Image.Image]) -> np.ndarray:
    out = [embedder.embed(images[i : i + 16]) for i in range(0, len(images), 16)]
    return np.concatenate(out).astype(np.float32)


def main() -> None:
    spec = sys.argv[1]
    with_multi = "--no-multi" not in sys.argv
    tune_allocator()
    torch.set_num_threads(2)
    embedder = load_embedder(spec)
    products = json.loads((GROCERY / "catalog" / "products.json").read_text())
    queries = [json.loads(x) for x in (GROCERY / "queries.jsonl").read_text().splitlines() if x]
    started = time.perf_counter()
    catalog = []
    for product in products:
        for image in product["images"]:
            catalog.append(embed_all(embedder, catalog_views(load(GROCERY / "catalog" / image), CatalogViews.MULTI)))
    print(f"catalog {time.perf_counter() - started:.0f}s", flush=True)
    photos = [load(GROCERY / q["image"]) for q in queries]
    single = embed_all(embedder, photos)
    flipped = embed_all(embedder, [p.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for p in photos])
    print(f"queries {time.perf_counter() - started:.0f}s", flush=True)
    multi = np.zeros((len(queries), 14, single.shape[1]), np.float32)
    for i, (query, photo) in enumerate(zip(queries, photos)):
        if with_multi and query["split"] == "train":
            multi[i] = embed_all(embedder, catalog_views(photo, CatalogViews.MULTI))
    print(f"multi {time.perf_counter() - started:.0f}s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    slug = spec.replace(":", "_").replace("/", "_").replace("@", "_").replace("+", "__")
    np.savez(CACHE / f"{slug}.npz", catalog=np.stack(catalog), queries=single, flipped=flipped, multi=multi)


if __name__ == "__main__":
    main()
