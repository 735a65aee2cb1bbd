"""Shared research helpers: cached embeddings → whitening → centroid scores → metrics per split.

Everything fitted here uses catalog vectors and the catalog's product grouping only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from imagematch.models import Whitening
from imagematch.representation import fit_projection

GROCERY = Path("/work/shared/bench/grocery")
CACHE = Path(__file__).resolve().parents[3] / "data" / "research"

PRODUCTS = json.loads((GROCERY / "catalog" / "products.json").read_text())
PRODUCT_IDS = [p["id"] for p in PRODUCTS]
CATEGORY = {p["id"]: p["category"] for p in PRODUCTS}
IMAGE_PRODUCT = np.array([i for i, p in enumerate(PRODUCTS) for _ in p["images"]])  # 243
IMAGE_PATHS = [GROCERY / "catalog" / im for p in PRODUCTS for im in p["images"]]
QUERIES = [json.loads(line) for line in (GROCERY / "queries.jsonl").read_text().splitlines() if line]
LABELS = np.array([PRODUCT_IDS.index(q["product_id"]) for q in QUERIES])
SPLIT = np.array([q["split"] for q in QUERIES])
VAL = SPLIT == "val"
VAL_IDX = np.flatnonzero(VAL)
# val halves: the file is sorted by product, so the halves are disjoint product sets
HALF_A, HALF_B = VAL_IDX[: len(VAL_IDX) // 2], VAL_IDX[len(VAL_IDX) // 2 :]


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def load(slug: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(CACHE / f"{slug}.npz")
    return data["catalog"].astype(np.float32), data["queries"].astype(np.float32)


def whitened_scores(catalog: np.ndarray, queries: np.ndarray, shrinkage: float = 0.3,
                    fit_views: np.ndarray | None = None, fit_groups: np.ndarray | None = None) -> np.ndarray:
    """(queries, products) cosine to whitened product centroids; the product recipe."""
    n_img, n_views, dim = catalog.shape
    views = catalog.reshape(-1, dim) if fit_views is None else fit_views
    groups = np.repeat(IMAGE_PRODUCT, n_views) if fit_groups is None else fit_groups
    proj = fit_projection(views, groups, method=Whitening.PRODUCT, shrinkage=shrinkage)
    images = proj.apply(l2n(catalog.mean(axis=1)))
    cents = l2n(np.stack([images[IMAGE_PRODUCT == p].mean(0) for p in range(len(PRODUCTS))]))
    return proj.apply(queries) @ cents.T


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of the right product per query."""
    right = scores[np.arange(len(scores)), LABELS]
    return 1 + (scores > right[:, None]).sum(1)


def metrics(scores: np.ndarray, idx: np.ndarray | None = None) -> dict[str, float]:
    r = ranks(scores)
    if idx is not None:
        r = r[idx]
    return {"R@1": float((r == 1).mean()), "R@5": float((r <= 5).mean()), "MRR": float((1 / r).mean())}


def row(name: str, scores: np.ndarray) -> str:
    v, t = metrics(scores, VAL_IDX), metrics(scores, np.flatnonzero(~VAL))
    a, b = metrics(scores, HALF_A), metrics(scores, HALF_B)
    return (f"| {name} | {v['R@1']:.3f} | {v['R@5']:.3f} | {v['MRR']:.3f} | {a['R@1']:.3f} | {b['R@1']:.3f} "
            f"| {t['R@1']:.3f} | {t['R@5']:.3f} |")


HEADER = ("| variant | val R@1 | val R@5 | val MRR | val½a R@1 | val½b R@1 | train R@1 | train R@5 |\n"
          "|---|---|---|---|---|---|---|---|")


def bootstrap(new: np.ndarray, old: np.ndarray, idx: np.ndarray, k: int = 1, n: int = 2000, seed: int = 0):
    """Paired bootstrap of ΔR@k (new − old) over queries idx: mean and 95 % interval."""
    rng = np.random.default_rng(seed)
    d = ((ranks(new)[idx] <= k).astype(float) - (ranks(old)[idx] <= k).astype(float))
    draws = rng.integers(0, len(d), (n, len(d)))
    boots = d[draws].mean(1)
    return float(d.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))
