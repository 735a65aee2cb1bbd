"""Learning from labelled photos, second study: how the references are embedded, how much they
count as they accumulate, a linear adapter, and the lite0+lite2 fusion. From cached vectors.

`python study.py cv [model]` prints the CV grid on train; `python study.py val [model] NAME…` the val
rows of the named recipes (scored once, after the CV choice); `python study.py curve [model] NAME`
the learning curve. Vectors: data/research/learning-ii/<model>.npz (`extract.py`). The `train`
photos play the operator's labelled photos; `val` photos, a new shoot, are the queries that decide.
Choices are made by 3-fold CV on train (each product's photos dealt to folds in a seeded random
order; no ids, file names or val labels).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-11-30-new-shoots"))
import lib  # noqa: E402

from imagematch.models import Whitening  # noqa: E402
from imagematch.representation import fit_projection  # noqa: E402

CACHE = lib.CACHE / "learning-ii"
N_PRODUCTS = len(lib.PRODUCTS)
TRAIN_IDX = np.flatnonzero(~lib.VAL)
MODEL = "efficientnet_lite0"


@lru_cache(maxsize=4)
def vectors(model: str) -> dict[str, np.ndarray]:
    data = np.load(CACHE / f"{model}.npz")
    return {k: data[k].astype(np.float32) for k in data.files}


@dataclass(frozen=True)
class Recipe:
    name: str
    ref: str = "single"  # learned reference vector: "single" (the job's stored vector) | "flip" | "multi"
    weight: float = 0.3  # share of the learned prototype (at full trust)
    k: float = 0.0  # count-aware trust: w = weight · n / (n + k) for a product with n learned photos
    fit: str = "catalog"  # whitening: "catalog" (live) | "refit" (catalog views + learned photos' views)
    shrinkage: float = 0.3
    query: str = "single"  # "single" | "flip" (query-side mirror averaged: costs a second forward pass)
    probe: float = 0.0  # weight of a linear probe's log-probability (0: none)
    probe_c: float = 1.0  # its inverse regularisation
    knn: float = 0.0  # weight of the best single learned reference's score
    adapt: float = 0.0  # the probe folded into the product vectors: l2n(vector + adapt·l2n(probe weights))
    adapt_neighbours: int = 0  # 0: one multinomial probe over all products; K: per learned product,
    #                            a binary probe against its K nearest products' rows (scales to big catalogs)
    probe_rows: str = "views"  # probe trained on "views" (every framing) | "images" (one vector per image/photo)


def ref_vectors(v: dict[str, np.ndarray], ref: str, rows: np.ndarray) -> np.ndarray:
    if ref == "single":
        return v["queries"][rows]
    if ref == "flip":
        return lib.l2n(v["queries"][rows] + v["flipped"][rows])
    return lib.l2n(v["multi"][rows].mean(axis=1))


def ref_views(v: dict[str, np.ndarray], ref: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The learned photos' rows for a whitening refit, with their product."""
    if ref == "multi":
        views = v["multi"][rows]
        return views.reshape(-1, views.shape[-1]), np.repeat(lib.LABELS[rows], views.shape[1])
    if ref == "flip":
        return np.concatenate([v["queries"][rows], v["flipped"][rows]]), np.tile(lib.LABELS[rows], 2)
    return v["queries"][rows], lib.LABELS[rows]


_PROJ: dict[tuple, object] = {}


def projection(v, recipe: Recipe, refs: np.ndarray):
    catalog = v["catalog"]
    views = catalog.reshape(-1, catalog.shape[-1])
    groups = np.repeat(lib.IMAGE_PRODUCT, catalog.shape[1])
    refit = recipe.fit == "refit" and len(refs)
    key = (id(v), recipe.shrinkage, recipe.ref if refit else None, refs.tobytes() if refit else None)
    if key not in _PROJ:
        if refit:
            extra, extra_groups = ref_views(v, recipe.ref, refs)
            views, groups = np.concatenate([views, extra]), np.concatenate([groups, extra_groups])
        _PROJ[key] = fit_projection(views, groups, method=Whitening.PRODUCT, shrinkage=recipe.shrinkage)
    return _PROJ[key]


def scores(recipe: Recipe, refs: np.ndarray, queries: np.ndarray, model: str = MODEL) -> np.ndarray:
    v = vectors(model)
    proj = projection(v, recipe, refs)
    images = proj.apply(lib.l2n(v["catalog"].mean(axis=1)))
    cat = lib.l2n(np.stack([images[lib.IMAGE_PRODUCT == p].mean(0) for p in range(N_PRODUCTS)]))
    q = v["queries"][queries] if recipe.query == "single" else lib.l2n(v["queries"][queries] + v["flipped"][queries])
    q = proj.apply(q)
    if not len(refs):
        return q @ cat.T
    photos = proj.apply(ref_vectors(v, recipe.ref, refs))
    labels = lib.LABELS[refs]
    count = np.bincount(labels, minlength=N_PRODUCTS).astype(np.float32)
    learned = lib.l2n(np.stack([photos[labels == p].sum(0) if count[p] else np.zeros(photos.shape[1]) for p in range(N_PRODUCTS)]))
    w = recipe.weight * (count / (count + recipe.k) if recipe.k else (count > 0))
    prototypes = lib.l2n((1 - w[:, None]) * cat + w[:, None] * learned)
    if recipe.adapt and recipe.adapt_neighbours:
        prototypes = local_adapter(v, recipe, refs, proj, prototypes, count)
    elif recipe.adapt:
        weights = probe_model(v, recipe, refs, proj).coef_
        prototypes = lib.l2n(prototypes + recipe.adapt * lib.l2n(weights))
    s = q @ prototypes.T
    if recipe.knn:
        sims = q @ photos.T
        best = np.zeros_like(s)
        for p in np.flatnonzero(count):
            best[:, p] = sims[:, labels == p].max(1)
        s = s + recipe.knn * best
    if recipe.probe:
        s = s + recipe.probe * probe_logprob(v, recipe, refs, proj, q)
    return s


def probe_logprob(v, recipe: Recipe, refs: np.ndarray, proj, q: np.ndarray) -> np.ndarray:
    """Log-probabilities of a multinomial logistic probe on the whitened catalog views + learned views."""
    model = probe_model(v, recipe, refs, proj)
    out = np.full((len(q), N_PRODUCTS), -30.0, np.float32)
    out[:, model.classes_] = np.maximum(model.predict_log_proba(q), -30.0)
    return out


def local_adapter(v, recipe: Recipe, refs, proj, prototypes, count):
    """Per product with learned photos: a binary logistic probe, its rows against its K nearest
    products' rows (catalog image vectors + learned photos), folded into its vector."""
    from sklearn.linear_model import LogisticRegression

    images = proj.apply(lib.l2n(v["catalog"].mean(axis=1)))
    photos = proj.apply(ref_vectors(v, recipe.ref, refs))
    rows = np.concatenate([images, photos])
    owner = np.concatenate([lib.IMAGE_PRODUCT, lib.LABELS[refs]])
    sims = prototypes @ prototypes.T
    out = prototypes.copy()
    for p in np.flatnonzero(count):
        near = [n for n in np.argsort(-sims[p]) if n != p][: recipe.adapt_neighbours]
        take = np.isin(owner, [p, *near])
        model = LogisticRegression(C=recipe.probe_c, max_iter=300).fit(rows[take], owner[take] == p)
        out[p] = lib.l2n(prototypes[p] + recipe.adapt * lib.l2n(model.coef_[0]))
    return out


def probe_model(v, recipe: Recipe, refs: np.ndarray, proj):
    from sklearn.linear_model import LogisticRegression

    catalog = v["catalog"]
    if recipe.probe_rows == "views":
        x = [proj.apply(lib.l2n(catalog.reshape(-1, catalog.shape[-1])))]
        y = [np.repeat(lib.IMAGE_PRODUCT, catalog.shape[1])]
        extra, extra_groups = ref_views(v, recipe.ref, refs)
    else:
        x, y = [proj.apply(lib.l2n(catalog.mean(axis=1)))], [lib.IMAGE_PRODUCT]
        extra, extra_groups = ref_vectors(v, recipe.ref, refs), lib.LABELS[refs]
    x.append(proj.apply(lib.l2n(extra)))
    y.append(extra_groups)
    model = LogisticRegression(C=recipe.probe_c, max_iter=300)
    return model.fit(np.concatenate(x), np.concatenate(y))


def full(part: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.full((len(lib.QUERIES), N_PRODUCTS), -np.inf, dtype=np.float32)
    out[rows] = part
    return out


def folds(k: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(TRAIN_IDX), dtype=int)
    for p in range(N_PRODUCTS):
        members = np.flatnonzero(lib.LABELS[TRAIN_IDX] == p)
        fold[rng.permutation(members)] = np.arange(len(members)) % k
    return fold


def subset(rows: np.ndarray, per_product: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(rows[lib.LABELS[rows] == p])[:per_product] for p in range(N_PRODUCTS)]
    return np.sort(np.concatenate(keep)).astype(int)


def cv(recipe: Recipe, model: str = MODEL, k: int = 3, per_product: int | None = None) -> tuple[float, float]:
    """CV R@1/R@5 on train; ``per_product`` caps the learned photos per product (the curve's low end)."""
    fold = folds(k)
    r1 = r5 = 0
    for f in range(k):
        refs, held = TRAIN_IDX[fold != f], TRAIN_IDX[fold == f]
        if per_product is not None:
            refs = subset(refs, per_product, seed=f)
        r = lib.ranks(full(scores(recipe, refs, held, model), held))[held]
        r1 += int((r == 1).sum())
        r5 += int((r <= 5).sum())
    return r1 / len(TRAIN_IDX), r5 / len(TRAIN_IDX)


GRID = [
    Recipe("product today: single ref, blend 0.3, live"),
    Recipe("product today after a rebuild", fit="refit"),
    Recipe("multi-view refs, blend 0.3, live", ref="multi"),
    Recipe("multi-view refs, blend 0.5, live", ref="multi", weight=0.5),
    Recipe("multi-view refs, blend 0.3, refit", ref="multi", fit="refit"),
    Recipe("multi-view refs, blend 0.5, refit", ref="multi", fit="refit", weight=0.5),
    Recipe("flip refs, blend 0.3, live", ref="flip"),
    Recipe("count-aware 0.5·n/(n+2), multi, live", ref="multi", weight=0.5, k=2),
    Recipe("count-aware 0.6·n/(n+3), multi, live", ref="multi", weight=0.6, k=3),
    Recipe("multi, blend 0.3 + kNN 0.3, live", ref="multi", knn=0.3),
    Recipe("multi, blend 0.3 + probe 0.02 (C=1), live", ref="multi", probe=0.02),
    Recipe("multi, blend 0.3 + probe 0.05 (C=1), live", ref="multi", probe=0.05),
    Recipe("query flip TTA, multi, blend 0.3, live", ref="multi", query="flip"),
]


def main() -> None:
    mode = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) > 2 else MODEL
    names = sys.argv[3:]
    if mode == "cv":
        print(f"model {model}\n| recipe | CV R@1 | CV R@5 | CV R@1, 1 per product | CV R@1, 2 per product |\n|---|---|---|---|---|")
        for recipe in GRID if not names else [r for r in GRID if r.name in names]:
            a1, a5 = cv(recipe, model)
            one, _ = cv(recipe, model, per_product=1)
            two, _ = cv(recipe, model, per_product=2)
            print(f"| {recipe.name} | {a1:.3f} | {a5:.3f} | {one:.3f} | {two:.3f} |", flush=True)
    elif mode == "val":
        print(f"model {model}\n| recipe | val R@1 | val R@5 | MRR | ½a R@1 | ½b R@1 |\n|---|---|---|---|---|---|")
        base = full(scores(Recipe("none"), np.array([], int), lib.VAL_IDX, model), lib.VAL_IDX)
        m = lib.metrics(base, lib.VAL_IDX)
        print(f"| nothing learned | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['MRR']:.3f} | - | - |")
        for recipe in [r for r in GRID if r.name in names]:
            s = full(scores(recipe, TRAIN_IDX, lib.VAL_IDX, model), lib.VAL_IDX)
            v, a, b = (lib.metrics(s, i) for i in (lib.VAL_IDX, lib.HALF_A, lib.HALF_B))
            print(f"| {recipe.name} | {v['R@1']:.3f} | {v['R@5']:.3f} | {v['MRR']:.3f} | {a['R@1']:.3f} | {b['R@1']:.3f} |", flush=True)



GRID += [
    Recipe("multi, blend 0.3 + probe 0.1 (C=1), live", ref="multi", probe=0.1),
    Recipe("multi, blend 0.3 + probe 0.2 (C=1), live", ref="multi", probe=0.2),
    Recipe("multi, blend 0.3 + probe 0.05 (C=10), live", ref="multi", probe=0.05, probe_c=10.0),
    Recipe("multi, blend 0.3 + probe 0.1 (C=10), live", ref="multi", probe=0.1, probe_c=10.0),
    Recipe("multi, blend 0.3 + probe 0.05 (C=0.1), live", ref="multi", probe=0.05, probe_c=0.1),
    Recipe("multi, blend 0.3 + probe 0.1 (C=0.1), live", ref="multi", probe=0.1, probe_c=0.1),
    Recipe("single, blend 0.3 + probe 0.05 (C=1), live", probe=0.05),
    Recipe("multi, blend 0.3, refit + probe 0.05 (C=1)", ref="multi", fit="refit", probe=0.05),
]

GRID += [
    *[Recipe(f"multi, blend 0.3 + probe {w} (C={c}), live", ref="multi", probe=w, probe_c=c)
      for w in (0.3, 0.5, 1.0) for c in (1.0, 10.0)],
    Recipe("multi, blend 0.3 + probe 0.2 (C=1) on image vectors, live", ref="multi", probe=0.2, probe_rows="images"),
    Recipe("multi, blend 0.3 + probe 0.2 (C=10) on image vectors, live", ref="multi", probe=0.2, probe_c=10.0, probe_rows="images"),
]

GRID += [
    *[Recipe(f"multi, blend 0.3, adapter {a} (C={c}), live", ref="multi", adapt=a, probe_c=c)
      for a in (0.3, 0.6, 1.0, 1.5, 2.0, 3.0) for c in (1.0, 10.0)],
]

GRID += [
    *[Recipe(f"multi, blend 0.3, local adapter {a} vs {k} nearest (C={c}), live", ref="multi", adapt=a,
             adapt_neighbours=k, probe_c=c) for a in (0.5, 1.0) for k in (5, 10, 20) for c in (1.0, 10.0)],
]

GRID += [
    *[Recipe(f"{ref}, blend 0.3, adapter {a} (C={c}) on image vectors, live", ref=ref, adapt=a, probe_c=c,
             probe_rows="images") for ref in ("single", "multi") for a in (1.0, 1.5) for c in (1.0, 10.0)],
]

GRID += [Recipe(f"single ref, blend {w}, refit", fit="refit", weight=w) for w in (0.2, 0.5)]


if __name__ == "__main__":
    main()
