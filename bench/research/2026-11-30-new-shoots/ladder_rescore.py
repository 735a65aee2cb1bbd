"""Val/train figures for the ladder rows whose vectors the study cached (lite0@288 multilayer):
re-scored exactly as the product scores them. Prints JSON rows for bench/quality_results.json."""

from __future__ import annotations

import json

import numpy as np

from imagematch.models import Whitening
from imagematch.representation import fit_projection
from lib import IMAGE_PRODUCT, PRODUCTS, VAL, l2n, load, metrics, whitened_scores


def centroid_scores(images: np.ndarray, queries: np.ndarray) -> np.ndarray:
    cents = l2n(np.stack([images[IMAGE_PRODUCT == p].mean(0) for p in range(len(PRODUCTS))]))
    return queries @ cents.T


def max_scores(images: np.ndarray, queries: np.ndarray) -> np.ndarray:
    sims = queries @ images.T
    return np.stack([sims[:, IMAGE_PRODUCT == p].max(1) for p in range(len(PRODUCTS))], 1)


def summary(scores: np.ndarray) -> dict[str, object]:
    def block(idx: np.ndarray) -> dict[str, object]:
        m = metrics(scores, idx)
        return {"n": int(len(idx)), "recall@1": round(m["R@1"], 4), "recall@5": round(m["R@5"], 4),
                "mrr": round(m["MRR"], 4)}

    every = block(np.arange(len(scores)))
    return {**every, "per_split": {"train": block(np.flatnonzero(~VAL)), "val": block(np.flatnonzero(VAL))},
            "images_per_second": None, "embedder": "efficientnet-lite0@0.1.0/s288-crop/multilayer",
            "measured": "2026-11-30 (re-scored from the study's cached vectors; speed not measured)"}


def main() -> None:
    cat, q = load("efficientnet_lite0_multi")
    single = cat[:, :1]  # view 0 is the image itself: the single-view catalog
    groups = np.repeat(IMAGE_PRODUCT, cat.shape[1])
    rows = {
        "288-multilayer": centroid_scores(l2n(single[:, 0]), q),
        "whitened": whitened_scores(single, q),
    }
    proj = fit_projection(cat.reshape(-1, cat.shape[-1]), groups, method=Whitening.PRODUCT, shrinkage=0.3)
    rows["default-max"] = max_scores(proj.apply(l2n(cat.mean(1))), proj.apply(q))
    image_groups = np.repeat(np.arange(len(cat)), cat.shape[1])
    label_free = fit_projection(cat.reshape(-1, cat.shape[-1]), image_groups, method=Whitening.IMAGE, shrinkage=0.3)
    rows["label-free"] = centroid_scores(label_free.apply(l2n(cat.mean(1))), label_free.apply(q))
    print(json.dumps({name: summary(s) for name, s in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
