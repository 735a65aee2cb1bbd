"""Shoot-like catalog views, scored from the product's own embedding cache.

`imagematch eval` with IMAGEMATCH_CATALOG_VIEWS=shoot (data dir data/eval-shoot) stores each catalog
image's 20 view vectors (14 framings + 6 shoot-like copies) in its embedding cache; the query
vectors come from extract.py (same embedder, so the same vectors the eval used). This re-scores the
product recipe exactly, then the ablations (how many shoot views; in the fit only, or also in the
image vectors) and the paired bootstrap against the 14-view default.
"""

from __future__ import annotations

import numpy as np

from imagematch.images import sha256_hex
from index_builder.cache import EmbeddingCache
from lib import CACHE, HALF_A, HALF_B, HEADER, IMAGE_PATHS, IMAGE_PRODUCT, VAL_IDX, bootstrap, load, ranks, row, whitened_scores

KEY = "efficientnet-lite0@0.1.0/s288-crop/multilayer|views=shoot"


def shoot_views() -> np.ndarray:
    cache = EmbeddingCache(CACHE.parent / "eval-shoot" / "embedding_cache.sqlite3")
    digests = [sha256_hex(path.read_bytes()) for path in IMAGE_PATHS]
    found = cache.get_many(KEY, digests)
    return np.stack([found[d] for d in digests])


def with_shoot(multi, shoot, q, n, in_vectors, shrinkage=0.3):
    extra = shoot[:, 14 : 14 + n]
    both = np.concatenate([multi, extra], 1)
    groups = np.repeat(IMAGE_PRODUCT, both.shape[1])
    return whitened_scores(both if in_vectors else multi, q, shrinkage, both.reshape(-1, both.shape[-1]), groups)


def main() -> None:
    multi, q = load("efficientnet_lite0_multi")
    shoot = shoot_views()
    # the cache stores float16; the 14 framings must agree with extract.py's up to that rounding
    print(f"<!-- max |cache − extract| over the 14 framings: {np.abs(shoot[:, :14] - multi).max():.4f} -->")
    s0 = whitened_scores(multi, q)
    print(HEADER)
    print(row("default until now: 14 framings (multi)", s0))
    chosen = None
    for n in (2, 4, 6):
        for in_vectors in (False, True):
            s = with_shoot(multi, shoot, q, n, in_vectors)
            print(row(f"14 + {n} shoot views in the fit{' and the image vectors' if in_vectors else ' only'}", s))
            if n == 6 and in_vectors:
                chosen = s
    for sh in (0.1, 0.5):
        print(row(f"14 + 6 shoot views, fit and vectors, shrinkage {sh}", with_shoot(multi, shoot, q, 6, True, sh)))
    assert chosen is not None
    np.save(CACHE / "scores_shoot.npy", chosen)
    print()
    print("\n| best score ≥ | default coverage | default precision | shoot coverage | shoot precision |")
    print("|---|---|---|---|---|")
    for t in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        cells = []
        for s in (s0, chosen):
            top, right = s[VAL_IDX].max(1), ranks(s)[VAL_IDX] == 1
            kept = top >= t
            cells += [f"{kept.mean():.3f}", f"{right[kept].mean() if kept.any() else 0:.3f}"]
        print(f"| {t} | " + " | ".join(cells) + " |")
    for name, idx in (("val", VAL_IDX), ("val half a", HALF_A), ("val half b", HALF_B)):
        for k in (1, 5):
            d, lo, hi = bootstrap(chosen, s0, idx, k)
            print(f"- ΔR@{k} {name}: {d:+.3f} [95 % CI {lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    main()
