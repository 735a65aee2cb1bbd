"""Embed shoot-like augmentations of every catalog image (for fitting the whitening only).

Each catalog image gets N deterministic augmented views: one of the product's 14 framings, then
colour jitter (brightness, contrast, saturation, white balance), sometimes blur, JPEG re-compression
and a mild perspective warp — what a new shoot changes. Writes data/research/aug_<slug>_<N>.npz:
`views` (243, N, d).
"""

from __future__ import annotations

import io
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from imagematch.embedder import load_embedder
from imagematch.models import CatalogViews
from imagematch.representation import catalog_views
from imagematch.runtime import tune_allocator
from lib import CACHE, IMAGE_PATHS


def shoot(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    views = catalog_views(image.convert("RGB"), CatalogViews.MULTI)
    im = views[int(rng.integers(len(views)))]
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.6, 1.4))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.7, 1.3))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
    gains = rng.uniform(0.85, 1.15, 3)  # white balance / colour cast
    arr = np.clip(np.asarray(im, np.float32) * gains, 0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    if rng.random() < 0.5:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    if rng.random() < 0.5:  # perspective: move each corner by up to 10 % of the side
        w, h = im.size
        d = rng.uniform(-0.1, 0.1, 8) * np.array([w, h] * 4)
        quad = (np.array([0, 0, 0, h, w, h, w, 0], float) + d).tolist()
        im = im.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(30, 90)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def main() -> None:
    spec, n = sys.argv[1], int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0  # a slice of the catalog (parallel runs)
    tune_allocator()
    torch.set_num_threads(2)
    embedder = load_embedder(spec)
    slug = spec.replace(":", "_").replace("/", "_").replace("@", "_")
    started = time.perf_counter()
    out = []
    for i, path in list(enumerate(IMAGE_PATHS))[first:]:
        rng = np.random.default_rng(1000 + i)
        image = Image.open(path).convert("RGB")
        out.append(embedder.embed([shoot(image, rng) for _ in range(n)]))
        if i % 40 == 0:
            print(i, f"{time.perf_counter() - started:.0f}s", flush=True)
    suffix = f"_from{first}" if first else ""
    np.savez(CACHE / f"aug_{slug}_{n}{suffix}.npz", views=np.stack(out))
    print(f"done in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
