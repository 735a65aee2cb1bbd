"""Shoot-like augmentation (aug_extract.py) in the whitening fit and/or the catalog image vectors."""

from __future__ import annotations

import sys

import numpy as np

from lib import CACHE, HEADER, IMAGE_PRODUCT, VAL_IDX, HALF_A, HALF_B, bootstrap, l2n, load, row, whitened_scores


def scores_with(cat, q, aug, n_aug, in_vectors, shrinkage=0.3):
    a = aug[:, :n_aug]
    both = np.concatenate([cat, a], 1)
    fit_views = both.reshape(-1, cat.shape[-1])
    groups = np.repeat(IMAGE_PRODUCT, both.shape[1])
    return whitened_scores(both if in_vectors else cat, q, shrinkage, fit_views, groups)


def main(slug="efficientnet_lite0_multi", aug_slug="aug_efficientnet_lite0_12"):
    cat, q = load(slug)
    aug = np.load(CACHE / f"{aug_slug}.npz")["views"].astype(np.float32)
    s0 = whitened_scores(cat, q)
    print(HEADER)
    print(row("default (14 views)", s0))
    best = None
    for n in (4, 8, 12):
        for in_vectors in (False, True):
            s = scores_with(cat, q, aug, n, in_vectors)
            print(row(f"14 views + {n} shoot views in fit{' and image vectors' if in_vectors else ''}", s))
            if n == 12 and in_vectors:
                best = s
    for sh in (0.1, 0.5):
        print(row(f"14 + 12 shoot views in fit and vectors, shrink {sh}", scores_with(cat, q, aug, 12, True, sh)))
    for name, idx in (("val", VAL_IDX), ("val½a", HALF_A), ("val½b", HALF_B)):
        for k in (1, 5):
            d, lo, hi = bootstrap(best, s0, idx, k)
            print(f"ΔR@{k} {name}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    main(*sys.argv[1:])
