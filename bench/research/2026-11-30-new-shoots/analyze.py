"""Re-score variants from the cached embeddings / inlier counts; prints a markdown table.

python analyze.py [section ...]   sections: base, aug, geo, fusion, colour
"""

from __future__ import annotations

import sys

import numpy as np

from lib import (CACHE, CATEGORY, HALF_A, HALF_B, HEADER, IMAGE_PRODUCT, LABELS, PRODUCT_IDS, VAL_IDX,
                 bootstrap, l2n, load, metrics, ranks, row, whitened_scores)


def base():
    cat, q = load("efficientnet_lite0_multi")
    s = whitened_scores(cat, q)
    print(row("lite0@288 default (14 views, WCW 0.3, centroid)", s))
    for sh in (0.1, 0.5):
        print(row(f"lite0@288 WCW shrink {sh}", whitened_scores(cat, q, sh)))
    return s


def per_category(s):
    r = ranks(s)[VAL_IDX]
    cats = np.array([CATEGORY[PRODUCT_IDS[l]] for l in LABELS[VAL_IDX]])
    for c in sorted(set(cats)):
        m = cats == c
        print(f"{c:14s} n={m.sum():3d} R@1 {np.mean(r[m] == 1):.2f} R@5 {np.mean(r[m] <= 5):.2f}")


def colour(s0):
    cat, q = load("efficientnet_lite0_multi")
    ccat, cq = (np.load(CACHE / "colour.npz")[k] for k in ("catalog", "queries"))
    for w in (0.25, 0.5, 0.75):
        print(row(f"concat [cnn, {w}·colour] before WCW", whitened_scores(
            np.concatenate([cat, w * ccat], -1), np.concatenate([q, w * cq], -1))))
    sc = whitened_scores(ccat, cq)
    print(row("colour alone, WCW", sc))
    for w in (0.1, 0.2, 0.3):
        print(row(f"score sum: cnn + {w}·colour(WCW)", s0 + w * sc))


def geo_blend(s, inl, topk, weight, floor, cap):
    """score + weight·clip((inliers − floor)/(cap − floor), 0, 1) for the top-k products; inliers = max
    over the product's images."""
    out = s.copy()
    n_products = s.shape[1]
    prod_inl = np.full(s.shape, -1.0)
    for p in range(n_products):
        prod_inl[:, p] = inl[:, IMAGE_PRODUCT == p].max(1)
    order = np.argsort(-s, 1)[:, :topk]
    rows = np.arange(len(s))[:, None]
    got = prod_inl[rows, order]
    assert (got[VAL_IDX] >= 0).all(), "inliers not computed for some top-k product"
    out[rows, order] += weight * np.clip((got - floor) / (cap - floor), 0, 1)
    return out


GEO_GRID = [(0.1, 8, 30), (0.2, 8, 30), (0.3, 8, 30), (0.2, 5, 20), (0.2, 12, 40)]
GEO_GRID2 = [(0.2, 20, 60), (0.3, 20, 60), (0.5, 20, 60), (0.3, 30, 80)]  # second look, after the first grid


def geo(s0, tag="geo_top10_side0_cap500"):
    data = np.load(CACHE / f"{tag}.npz")
    print(f"<!-- {tag}: {float(data['seconds_per_query']) * 1000:.0f} ms/query -->")
    for kind in ("homography", "similarity"):
        inl = data[kind].astype(float)
        for topk in (3, 5, 10):
            for weight, floor, cap in GEO_GRID:
                s = geo_blend(s0, inl, topk, weight, floor, cap)
                print(row(f"geo {kind} top{topk} w{weight} floor{floor} cap{cap}", s))


if __name__ == "__main__":
    sections = sys.argv[1:] or ["base"]
    print(HEADER)
    s0 = base()
    if "colour" in sections:
        colour(s0)
    if "geo" in sections:
        geo(s0)
    if "geo2" in sections:
        GEO_GRID[:] = GEO_GRID2
        geo(s0)
    if "cat" in sections:
        per_category(s0)
