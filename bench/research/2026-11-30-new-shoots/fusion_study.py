"""lite0@288 + lite2@260 fusion on val: each model's 3-layer descriptor, concatenated (each part
L2-normalised, then the whole, as FusedEmbedder does), one within-product whitening, centroid."""

from __future__ import annotations

import sys

import numpy as np

from lib import HALF_A, HALF_B, HEADER, VAL_IDX, bootstrap, l2n, load, row, whitened_scores


def fused(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return l2n(np.concatenate([a, b], -1))


def main(views: str) -> None:
    c0, q0 = load("efficientnet_lite0_multi")
    c2, q2 = load(f"efficientnet_lite2_{views}")
    if views == "single":
        c0 = c0[:, :1]
    s0 = whitened_scores(c0, q0)
    s2 = whitened_scores(c2, q2)
    sf = whitened_scores(fused(c0, c2), fused(q0, q2))
    print(HEADER)
    print(row(f"lite0@288 alone ({views} catalog view(s))", s0))
    print(row(f"lite2@260 alone ({views})", s2))
    print(row(f"fusion lite0@288 + lite2@260 ({views})", sf))
    for sh in (0.1, 0.5):
        print(row(f"fusion, shrinkage {sh}", whitened_scores(fused(c0, c2), fused(q0, q2), sh)))
    for name, idx in (("val", VAL_IDX), ("val half a", HALF_A), ("val half b", HALF_B)):
        for k in (1, 5):
            d, lo, hi = bootstrap(sf, s0, idx, k)
            print(f"- fusion − lite0, ΔR@{k} {name}: {d:+.3f} [95 % CI {lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "multi")
