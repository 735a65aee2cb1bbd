"""Which labelled rows should the shipped confidence fit see, so that it is calibrated on a new shoot?

The shipped fit (2026-12-07-learning/calibrate.py) sees the `train` photos answered by the default
recipe; they were shot beside the catalog's in-store photos, so on `val` (a new shoot) it is
overconfident (ECE 0.085). Label-honest stand-ins for a new shoot, all made from train photos only:
- "shoot copies": the train photos through the product's `shoot_view` (light, colour cast, blur or
  warp, JPEG; two seeded copies each, `extract_shoot.py`), answered against the whole catalog;
- "page-only catalog": the train photos answered against product vectors made from the
  product-page image alone (the catalog's in-store photos, the train photos' shoot, left out);
- both, and each pooled with the plain train rows.
Each fit is the product's `fit_calibration` (logistic on top score and margin). Printed: ECE on
train and val (10 bins) and the share right at each confidence level on val. Val is scored once
per row; the row is chosen by the rule stated in the report, before looking at val.
"""

from __future__ import annotations

import sys

import numpy as np

from study import CACHE, N_PRODUCTS, Recipe, lib, scores, vectors

from imagematch.calibration import LabelledRanking, expected_calibration_error, fit_calibration  # noqa: E402

MODEL = sys.argv[1] if len(sys.argv) > 1 else "efficientnet_lite0"
TRAIN, VAL = np.flatnonzero(~lib.VAL), lib.VAL_IDX


def rows(s: np.ndarray, labels: np.ndarray) -> list[LabelledRanking]:
    order = np.sort(s, axis=1)[:, ::-1]
    right = s.argmax(1) == labels
    return [LabelledRanking(top_score=float(a), margin=float(a - b), correct=bool(r))
            for a, b, r in zip(order[:, 0], order[:, 1], right, strict=True)]


def page_only_scores(idx: np.ndarray) -> np.ndarray:
    """Scores of photos ``idx`` against product vectors from each product's first (page) image."""
    from study import projection

    v = vectors(MODEL)
    proj = projection(v, Recipe("default"), np.array([], int))
    images = proj.apply(lib.l2n(v["catalog"].mean(axis=1)))
    first = np.array([np.flatnonzero(lib.IMAGE_PRODUCT == p)[0] for p in range(N_PRODUCTS)])
    return proj.apply(v["queries"][idx]) @ lib.l2n(images[first]).T


def shoot_scores(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from study import projection

    v = vectors(MODEL)
    shoot = np.load(CACHE / f"{MODEL}-shoot.npz")["shoot"][idx]
    proj = projection(v, Recipe("default"), np.array([], int))
    images = proj.apply(lib.l2n(v["catalog"].mean(axis=1)))
    cat = lib.l2n(np.stack([images[lib.IMAGE_PRODUCT == p].mean(0) for p in range(N_PRODUCTS)]))
    flat = shoot.reshape(-1, shoot.shape[-1])
    return proj.apply(flat) @ cat.T, np.repeat(lib.LABELS[idx], shoot.shape[1])


def report(name: str, fit_rows: list[LabelledRanking]) -> None:
    fit = fit_calibration(fit_rows, embedder_id=MODEL, fitted_on=name)
    out = [f"| {name} | {len(fit_rows)}"]
    for idx in (TRAIN, VAL):
        s = scores(Recipe("default"), np.array([], int), idx, MODEL)
        labelled = rows(s, lib.LABELS[idx])
        conf = np.array([fit.confidence(r.top_score, r.top_score - r.margin) for r in labelled])
        right = np.array([r.correct for r in labelled])
        out.append(f"{expected_calibration_error(conf, right):.3f}")
        if idx is VAL:
            out.append(f"{conf.mean():.3f} / {right.mean():.3f}")
            for t in (0.9, 0.95):
                sel = conf >= t
                out.append(f"{sel.mean():.2f} / {right[sel].mean() if sel.any() else float('nan'):.3f}")
    print(" | ".join(out) + f" | a={fit.score_weight:.2f} b={fit.margin_weight:.2f} c={fit.intercept:.2f} |", flush=True)


def main() -> None:
    plain = rows(scores(Recipe("default"), np.array([], int), TRAIN, MODEL), lib.LABELS[TRAIN])
    page = rows(page_only_scores(TRAIN), lib.LABELS[TRAIN])
    shot, shot_labels = shoot_scores(TRAIN)
    shoot = rows(shot, shot_labels)
    print(f"model {MODEL}\n| fit on | rows | train ECE | val ECE | val mean conf / R@1 | val conf ≥ 0.9: share / right "
          "| val conf ≥ 0.95: share / right | fit |\n|---|---|---|---|---|---|---|---|")
    report("train photos (the shipped fit)", plain)
    report("shoot copies", shoot)
    report("train photos + shoot copies", plain + shoot)
    report("page-only catalog", page)
    report("train photos + page-only catalog", plain + page)
    report("shoot copies + page-only catalog", shoot + page)


if __name__ == "__main__":
    main()
