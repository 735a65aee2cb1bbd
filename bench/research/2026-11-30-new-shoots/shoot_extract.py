"""Embed the product's shoot-like catalog views (CatalogViews.SHOOT minus the 14 framings, which
extract.py cached) and store the full per-image matrices in an eval data dir's embedding cache, so
`imagematch eval` with IMAGEMATCH_CATALOG_VIEWS=shoot only has to embed the queries. Resumable:
images already in the cache are skipped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imagematch.embedder import load_embedder
from imagematch.images import decode_image, sha256_hex
from imagematch.models import CatalogViews
from imagematch.representation import catalog_views
from imagematch.runtime import tune_allocator
from index_builder.cache import EmbeddingCache
from lib import IMAGE_PATHS, load

KEY = "efficientnet-lite0@0.1.0/s288-crop/multilayer|views="


def main() -> None:
    data_dir = Path(sys.argv[1])
    tune_allocator()
    torch.set_num_threads(2)
    embedder = load_embedder("efficientnet:lite0")
    multi, _ = load("efficientnet_lite0_multi")
    cache = EmbeddingCache(data_dir / "embedding_cache.sqlite3")
    digests = [sha256_hex(path.read_bytes()) for path in IMAGE_PATHS]
    cache.put_many(KEY + "multi", {d: multi[i] for i, d in enumerate(digests)})
    done = cache.get_many(KEY + "shoot", digests)
    started = time.perf_counter()
    for i, (path, digest) in enumerate(zip(IMAGE_PATHS, digests, strict=True)):
        if digest in done:
            continue
        image: Image.Image = decode_image(path.read_bytes(), max_bytes=50_000_000, max_pixels=100_000_000)
        extra = catalog_views(image, CatalogViews.SHOOT)[14:]
        cache.put_many(KEY + "shoot", {digest: np.concatenate([multi[i], embedder.embed(extra)])})
        if i % 20 == 0:
            print(i, f"{time.perf_counter() - started:.0f}s", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
