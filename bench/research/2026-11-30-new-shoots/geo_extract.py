"""Cache local-feature (RootSIFT) inlier counts: each query against every image of its top-K products
under the default embedding ranking. Writes data/research/geo_<tag>.npz: inliers (782, 243),
-1 where not computed, for homography and similarity RANSAC, plus the time per query.
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
from PIL import Image

from lib import CACHE, IMAGE_PATHS, IMAGE_PRODUCT, QUERIES, GROCERY, load, whitened_scores

TOPK = int(sys.argv[1]) if len(sys.argv) > 1 else 10
SIDE = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # 0: native size
CAP = int(sys.argv[3]) if len(sys.argv) > 3 else 500
ALLSPLITS = len(sys.argv) > 4 and sys.argv[4] == "all"
cv2.setNumThreads(1)
SIFT = cv2.SIFT_create(nfeatures=CAP)


def features(path):
    image = Image.open(path).convert("L")
    if SIDE:
        scale = SIDE / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    kp, desc = SIFT.detectAndCompute(np.asarray(image), None)
    if desc is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    desc = np.sqrt(desc / np.maximum(desc.sum(1, keepdims=True), 1e-7))  # RootSIFT
    return np.array([k.pt for k in kp], np.float32), desc.astype(np.float32)


def inliers(q, c, ratio=0.8):
    (qp, qd), (cp, cd) = q, c
    if len(qd) < 5 or len(cd) < 5:
        return 0, 0
    sims = qd @ cd.T  # RootSIFT: cosine ~ Hellinger; distance² = 2 − 2·sim
    top2 = np.argpartition(-sims, 1, axis=1)[:, :2]
    s2 = np.take_along_axis(sims, top2, 1)
    order = np.argsort(-s2, 1)
    best = np.take_along_axis(top2, order, 1)
    s2 = np.take_along_axis(s2, order, 1)
    d1, d2 = np.sqrt(np.maximum(2 - 2 * s2[:, 0], 0)), np.sqrt(np.maximum(2 - 2 * s2[:, 1], 0))
    keep = d1 < ratio * d2
    if keep.sum() < 5:
        return int(keep.sum()) and 0, 0
    src, dst = qp[keep], cp[best[keep, 0]]
    _, mask_h = cv2.findHomography(src, dst, cv2.RANSAC, 8.0, maxIters=500)
    _, mask_s = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=8.0, maxIters=500)
    return int(mask_h.sum()) if mask_h is not None else 0, int(mask_s.sum()) if mask_s is not None else 0


def main():
    if TOPK:
        catalog, queries = load("efficientnet_lite0_multi")
        scores = whitened_scores(catalog, queries)
    wanted = [i for i, q in enumerate(QUERIES) if q["split"] == "val" or ALLSPLITS]
    t0 = time.perf_counter()
    cat_feats = [features(p) for p in IMAGE_PATHS]
    print(f"catalog features {time.perf_counter() - t0:.1f}s; mean kp {np.mean([len(f[0]) for f in cat_feats]):.0f}", flush=True)
    homog = -np.ones((len(QUERIES), len(IMAGE_PATHS)), np.int16)
    simil = homog.copy()
    t0 = time.perf_counter()
    extract_s = 0.0
    for qi in wanted:
        q = QUERIES[qi]
        t1 = time.perf_counter()
        qf = features(GROCERY / q["image"])
        extract_s += time.perf_counter() - t1
        images = (np.flatnonzero(np.isin(IMAGE_PRODUCT, np.argsort(-scores[qi])[:TOPK])) if TOPK
                  else range(len(IMAGE_PATHS)))
        for im in images:
            homog[qi, im], simil[qi, im] = inliers(qf, cat_feats[im])
        if qi % 50 == 0:
            print(qi, f"{time.perf_counter() - t0:.1f}s", flush=True)
    total = time.perf_counter() - t0
    out = CACHE / f"geo_top{TOPK}_side{SIDE}_cap{CAP}.npz"
    np.savez(out, homography=homog, similarity=simil, seconds_per_query=total / len(wanted),
             extract_seconds_per_query=extract_s / len(wanted))
    print(f"wrote {out}: {total / len(wanted) * 1000:.0f} ms/query ({extract_s / len(wanted) * 1000:.0f} extract)")


if __name__ == "__main__":
    main()
