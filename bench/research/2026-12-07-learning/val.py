"""Val figures (reported once, after the CV choice) and the learning curve, from the cached vectors.

`python val.py` prints the val rows of VAL_ROWS with halves and a paired bootstrap against the
naive recipe, then the learning curve (val R@1 / R@5 with 0, 1, 2, 4 and all labelled train photos
per product; the photos of a product drawn in a seeded random order, the same draw as
bench/quality_learning.py uses in spirit: no ids or file names decide it).
"""

from __future__ import annotations

import sys

import numpy as np

from study import TRAIN_IDX, Recipe, lib, val

CHOSEN = Recipe("blend w=0.3, whitening refit (the product after a rebuild)", photo_weight=0.3)
VAL_ROWS = [
    Recipe("default, nothing learned", fit="catalog"),
    Recipe("naive: every photo counts like a catalog image, whitening refit"),
    Recipe("naive, live (no refit)", fit="catalog"),
    CHOSEN,
    Recipe("blend w=0.3, live (the product before the next rebuild)", fit="catalog", photo_weight=0.3),
    Recipe("blend w=0.5, live (no refit)", fit="catalog", photo_weight=0.5),
]


def subset(per_product: int | None, seed: int = 0) -> np.ndarray:
    if per_product is None:
        return TRAIN_IDX
    rng = np.random.default_rng(seed)
    keep = []
    for p in range(len(lib.PRODUCTS)):
        members = TRAIN_IDX[lib.LABELS[TRAIN_IDX] == p]
        keep += list(rng.permutation(members)[:per_product])
    return np.sort(np.array(keep, dtype=int))


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "rows"
    if which == "rows":
        print(lib.HEADER.replace(" train R@1 | train R@5 |", "").replace("|---|---|---|---|---|---|---|---|", "|---|---|---|---|---|---|"))
        scores = {}
        for recipe in VAL_ROWS:
            refs = np.array([], int) if recipe.name.startswith("default") else TRAIN_IDX
            scores[recipe.name] = s = val(recipe, refs)
            v, a, b = (lib.metrics(s, idx) for idx in (lib.VAL_IDX, lib.HALF_A, lib.HALF_B))
            print(f"| {recipe.name} | {v['R@1']:.3f} | {v['R@5']:.3f} | {v['MRR']:.3f} | {a['R@1']:.3f} | {b['R@1']:.3f} |", flush=True)
        base = scores[VAL_ROWS[1].name]
        for k in (1, 5):
            for name, idx in (("val", lib.VAL_IDX), ("val half a", lib.HALF_A), ("val half b", lib.HALF_B)):
                d, lo, hi = lib.bootstrap(scores[CHOSEN.name], base, idx, k=k)
                print(f"- chosen − naive, ΔR@{k} {name}: {d:+.3f} [95 % CI {lo:+.3f}, {hi:+.3f}]")
    else:
        print("| labelled per product | 0 | 1 | 2 | 4 | all |\n|---|---|---|---|---|---|")
        for recipe in (VAL_ROWS[4], VAL_ROWS[2]):  # the live path: what eval --learn-from serves
            cells = []
            for n in (0, 1, 2, 4, None):
                m = lib.metrics(val(recipe, subset(n) if n != 0 else np.array([], int)), lib.VAL_IDX)
                cells.append(f"{m['R@1']:.3f} ({m['R@5']:.3f})")
            print(f"| {recipe.name}: val R@1 (R@5) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
