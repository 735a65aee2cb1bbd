"""Colour histograms (HSV, joint 16 hue x 4 saturation x 4 value, square-rooted) for queries and for
the 14 catalog views. Writes data/research/colour.npz: catalog (243, 14, 256), queries (782, 256)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imagematch.models import CatalogViews
from imagematch.representation import catalog_views
from lib import CACHE, GROCERY, IMAGE_PATHS, QUERIES


def histogram(image: Image.Image) -> np.ndarray:
    hsv = np.asarray(image.convert("RGB").resize((96, 96), Image.Resampling.BILINEAR).convert("HSV"), np.int32)
    h, s, v = hsv[..., 0] * 16 // 256, hsv[..., 1] * 4 // 256, hsv[..., 2] * 4 // 256
    counts = np.bincount((h * 16 + s * 4 + v).ravel(), minlength=256).astype(np.float32)
    root = np.sqrt(counts / counts.sum())
    return root / np.linalg.norm(root)


def main() -> None:
    queries = np.stack([histogram(Image.open(GROCERY / q["image"])) for q in QUERIES])
    catalog = np.stack([
        np.stack([histogram(v) for v in catalog_views(Image.open(p).convert("RGB"), CatalogViews.MULTI)])
        for p in IMAGE_PATHS
    ])
    np.savez(CACHE / "colour.npz", catalog=catalog, queries=queries)
    print("done", catalog.shape, queries.shape)


if __name__ == "__main__":
    main()
