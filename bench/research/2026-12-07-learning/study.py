"""How should labelled real photos count next to catalog images? Re-scored from cached vectors.

Reads data/research/efficientnet_lite0_multi.npz (made by ../2026-11-30-new-shoots/extract.py with
the product code: 14-view catalog vectors, one vector per query photo). The `train` photos play the
operator's labelled photos (learned references); `val` photos are the queries that decide.

Every choice is made by cross-validation on train (3 folds, stratified by product, seeded random
assignment: no ids or file names used): references from two folds, queries from the third. Val is
scored once per variant, for the report. `python study.py cv` prints the CV grid, `python study.py
val` the val rows of the variants named in VAL_ROWS, `python study.py curve` the learning curve.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-11-30-new-shoots"))
import lib  # noqa: E402

from imagematch.models import Whitening  # noqa: E402
from imagematch.representation import fit_projection  # noqa: E402

CATALOG, QUERIES = lib.load("efficientnet_lite0_multi")
N_PRODUCTS = len(lib.PRODUCTS)
TRAIN_IDX = np.flatnonzero(~lib.VAL)
CAT_IMAGES = lib.l2n(CATALOG.mean(axis=1))  # (243, d) the product's image vectors


@dataclass(frozen=True)
class Recipe:
    """One way of counting learned photos. Defaults reproduce the naive recipe of issue 23."""

    name: str = "naive"
    fit: str = "product"  # whitening: "catalog" (views only) | "product" (views + photos by product)
    #                        | "residual" (views + photo−catalog-centroid residuals, weighted)
    fit_weight: float = 1.0  # weight of the photos' scatter in the whitening fit
    shrinkage: float = 0.3
    photo_weight: float | None = None  # None: every image counts once in the centroid (naive);
    #                                    else the centroid is (1−w)·catalog centroid + w·photo centroid
    scoring: str = "centroid"  # "centroid" | "two" (catalog centroid + photo centroid, max) |
    #                            "knn" (centroid score + knn_weight · best photo score)
    knn_weight: float = 0.0
    center: str = "shared"  # "shared": one mean for all (the product); "domain": queries and learned
    #                         photos centred on the learned photos' mean, catalog images on the catalog's


def _scatter(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    s = np.zeros((x.shape[1], x.shape[1]))
    for g in np.unique(groups):
        m = x[groups == g]
        c = m - m.mean(0)
        s += c.T @ c
    return s


_PROJECTIONS: dict[tuple, object] = {}


def projection(recipe: Recipe, refs: np.ndarray):
    """The whitening for ``recipe`` with photos ``refs`` learned (memoised: the fit is the slow part)."""
    key = ("catalog", recipe.shrinkage) if recipe.fit == "catalog" or len(refs) == 0 else (
        recipe.fit, recipe.fit_weight, recipe.shrinkage, refs.tobytes())
    if key not in _PROJECTIONS:
        _PROJECTIONS[key] = _projection(recipe, refs)
    return _PROJECTIONS[key]


def _projection(recipe: Recipe, refs: np.ndarray):
    views = CATALOG.reshape(-1, CATALOG.shape[-1])
    groups = np.repeat(lib.IMAGE_PRODUCT, CATALOG.shape[1])
    photos, photo_groups = QUERIES[refs], lib.LABELS[refs]
    if recipe.fit == "catalog" or len(refs) == 0:
        return fit_projection(views, groups, method=Whitening.PRODUCT, shrinkage=recipe.shrinkage)
    if recipe.fit == "product" and recipe.fit_weight == 1.0:
        return fit_projection(np.concatenate([views, photos]), np.concatenate([groups, photo_groups]),
                              method=Whitening.PRODUCT, shrinkage=recipe.shrinkage)
    # weighted within-product scatter: catalog views as the product does, photos weighted
    base = fit_projection(views, groups, method=Whitening.PRODUCT, shrinkage=recipe.shrinkage)
    cat_scatter = _scatter(views.astype(np.float64), groups)
    if recipe.fit == "product":
        extra = _scatter(photos.astype(np.float64), photo_groups)
    else:  # residual: how a real photo differs from its product's catalog images
        means = np.stack([CAT_IMAGES[lib.IMAGE_PRODUCT == p].mean(0) for p in range(N_PRODUCTS)])
        r = photos - means[photo_groups]
        extra = r.T @ r
    n = len(views) + recipe.fit_weight * len(photos)
    cov = (cat_scatter + recipe.fit_weight * extra) / n
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0, None)
    shrunk = (1 - recipe.shrinkage) * vals + recipe.shrinkage * vals.mean()
    matrix = (vecs / np.sqrt(np.maximum(shrunk, 1e-12))).astype(np.float32)
    return replace(base, matrix=matrix)


def scores(recipe: Recipe, refs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(len(queries), products) scores with the photos ``refs`` (indices into QUERIES) learned."""
    proj = projection(recipe, refs)
    if recipe.center == "domain" and len(refs):
        photo_proj = replace(proj, mean=QUERIES[refs].mean(0))
        cat_proj = replace(proj, mean=CATALOG.reshape(-1, CATALOG.shape[-1]).mean(0))
    else:
        photo_proj = cat_proj = proj
    images = cat_proj.apply(CAT_IMAGES)
    q = photo_proj.apply(QUERIES[queries])
    cat_cent = lib.l2n(np.stack([images[lib.IMAGE_PRODUCT == p].mean(0) for p in range(N_PRODUCTS)]))
    if len(refs) == 0:
        return q @ cat_cent.T
    photos = photo_proj.apply(QUERIES[refs])
    pl = lib.LABELS[refs]
    has = np.array([(pl == p).any() for p in range(N_PRODUCTS)])
    photo_sum = np.stack([photos[pl == p].sum(0) if has[p] else np.zeros(photos.shape[1]) for p in range(N_PRODUCTS)])
    if recipe.photo_weight is None:  # naive: every image once
        cat_sum = np.stack([images[lib.IMAGE_PRODUCT == p].sum(0) for p in range(N_PRODUCTS)])
        cent = lib.l2n(cat_sum + photo_sum)
    else:
        photo_cent = lib.l2n(photo_sum)
        w = recipe.photo_weight * has[:, None]
        cent = lib.l2n((1 - w) * cat_cent + w * photo_cent)
    s = q @ cent.T
    if recipe.scoring == "two":
        photo_cent = lib.l2n(photo_sum)
        s = np.maximum(q @ cat_cent.T, np.where(has[None, :], q @ photo_cent.T, -np.inf))
    elif recipe.scoring == "knn":
        sims = q @ photos.T
        best = np.full((len(q), N_PRODUCTS), 0.0)
        for p in np.flatnonzero(has):
            best[:, p] = sims[:, pl == p].max(1)
        s = s + recipe.knn_weight * best
    return s


def _full(part: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Scores for rows of QUERIES placed into a full (782, P) array (others −inf) for lib.ranks."""
    out = np.full((len(QUERIES), N_PRODUCTS), -np.inf, dtype=np.float32)
    out[rows] = part
    return out


def folds(k: int = 3, seed: int = 0) -> np.ndarray:
    """Fold number per train photo: each product's photos dealt round-robin in a seeded random order."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(TRAIN_IDX), dtype=int)
    for p in range(N_PRODUCTS):
        members = np.flatnonzero(lib.LABELS[TRAIN_IDX] == p)
        fold[rng.permutation(members)] = np.arange(len(members)) % k
    return fold


def cv(recipe: Recipe, k: int = 3) -> dict[str, float]:
    fold = folds(k)
    r1 = r5 = 0.0
    for f in range(k):
        refs, held = TRAIN_IDX[fold != f], TRAIN_IDX[fold == f]
        r = lib.ranks(_full(scores(recipe, refs, held), held))[held]
        r1 += (r == 1).sum()
        r5 += (r <= 5).sum()
    return {"R@1": r1 / len(TRAIN_IDX), "R@5": r5 / len(TRAIN_IDX)}


def val(recipe: Recipe, refs: np.ndarray = TRAIN_IDX) -> np.ndarray:
    return _full(scores(recipe, refs, lib.VAL_IDX), lib.VAL_IDX)


GRID2 = [
    Recipe("blend w=0.3, residual refit weight 1", fit="residual", photo_weight=0.3),
    Recipe("blend w=0.3, residual refit weight 3", fit="residual", fit_weight=3.0, photo_weight=0.3),
    Recipe("blend w=0.3, live, domain centring", fit="catalog", photo_weight=0.3, center="domain"),
    Recipe("blend w=0.5, live, domain centring", fit="catalog", photo_weight=0.5, center="domain"),
    Recipe("blend w=0.3, refit, domain centring", photo_weight=0.3, center="domain"),
    Recipe("blend w=0.3, refit, shrinkage 0.1", photo_weight=0.3, shrinkage=0.1),
]

GRID3 = [
    Recipe("blend w=0.3, refit with photos weighted 3", photo_weight=0.3, fit_weight=3.0),
    Recipe("blend w=0.3, refit with photos weighted 10", photo_weight=0.3, fit_weight=10.0),
    Recipe("blend w=0.3, residual refit weight 10", fit="residual", fit_weight=10.0, photo_weight=0.3),
]

GRID = [
    Recipe("naive: every photo counts like a catalog image, whitening refit"),
    Recipe("naive, live (no refit)", fit="catalog"),
    *[Recipe(f"blend w={w}, live (no refit)", fit="catalog", photo_weight=w) for w in (0.3, 0.5, 0.6, 0.7, 0.85)],
    *[Recipe(f"blend w={w}, whitening refit", photo_weight=w) for w in (0.3, 0.5, 0.7, 0.85)],
    Recipe("blend w=0.5, residual refit (photo − catalog centroid), weight 1", fit="residual", photo_weight=0.5),
    Recipe("two prototypes (max of catalog and learned), live", fit="catalog", scoring="two"),
    Recipe("naive + 0.5·best learned photo (kNN), live", fit="catalog", scoring="knn", knn_weight=0.5),
]


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "cv"
    if mode in ("cv", "cv2", "cv3"):
        if mode == "cv":
            print("| recipe | CV R@1 (train, 3 folds) | CV R@5 |\n|---|---|---|", flush=True)
        for recipe in {"cv": GRID, "cv2": GRID2, "cv3": GRID3}[mode]:
            m = cv(recipe)
            print(f"| {recipe.name} | {m['R@1']:.3f} | {m['R@5']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
