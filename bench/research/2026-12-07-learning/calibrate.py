"""Fit the shipped confidence calibration on the dev set's `train` photos; measure it on `val`.

Scores are the default recipe's (14-view catalog, product whitening, centroid), re-computed from
the cached vectors exactly as the product computes them (lib.whitened_scores). The fit sees only
train photos: (top score, top-1 − top-2 margin, was top-1 right). `python calibrate.py` prints the
fit, ECE on train and val, the bands' precision and coverage, and writes the fit as JSON (stdout's
last line) for `imagematch/calibration_fits.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-11-30-new-shoots"))
import lib  # noqa: E402

from imagematch.calibration import (  # noqa: E402
    LabelledRanking,
    calibration_report,
    expected_calibration_error,
    fit_calibration,
)

EMBEDDER_ID = "efficientnet-lite0@0.1.0/s288-crop/multilayer"  # load_embedder("efficientnet:lite0")
CONFIDENT_AT = 0.99


def rows(scores: np.ndarray, idx: np.ndarray) -> list[LabelledRanking]:
    order = np.sort(scores[idx], axis=1)[:, ::-1]
    right = scores[idx].argmax(1) == lib.LABELS[idx]
    return [LabelledRanking(top_score=float(a), margin=float(a - b), correct=bool(r))
            for a, b, r in zip(order[:, 0], order[:, 1], right, strict=True)]


def main() -> None:
    catalog, queries = lib.load("efficientnet_lite0_multi")
    scores = np.round(lib.whitened_scores(catalog, queries), 6)
    train, val = np.flatnonzero(~lib.VAL), lib.VAL_IDX
    fit = fit_calibration(rows(scores, train), embedder_id=EMBEDDER_ID, fitted_on="dev set train split (486 photos)")
    # The issue sets the bands on val: at 0.99 this fit's confident answers are right >= 95 % on
    # val (0.95 gives 0.896: the fit is overconfident on a new shoot). One choice made looking at val.
    fit = fit.model_copy(update={"confident_at": CONFIDENT_AT})
    for name, idx in (("train", train), ("val", val)):
        labelled = rows(scores, idx)
        conf = np.array([fit.confidence(r.top_score, r.top_score - r.margin) for r in labelled])
        right = np.array([r.correct for r in labelled])
        print(f"{name}: R@1 {right.mean():.3f} mean confidence {conf.mean():.3f} "
              f"ECE {expected_calibration_error(conf, right):.3f}")
        for t in (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995):
            sel = conf >= t
            print(f"  conf >= {t}: coverage {sel.mean():.3f} precision {right[sel].mean() if sel.any() else float('nan'):.3f}")
        for t in (0.3, 0.4, 0.5):
            sel = conf < t
            print(f"  conf < {t}: share {sel.mean():.3f} top-1 right {right[sel].mean() if sel.any() else float('nan'):.3f}")
    reports = {}
    for name, idx in (("train", train), ("val", val)):
        labelled = rows(scores, idx)
        conf = [fit.confidence(r.top_score, r.top_score - r.margin) for r in labelled]
        reports[name] = {"n": len(idx), "calibration": calibration_report(
            conf, [r.correct for r in labelled], confident_at=fit.confident_at, no_match_below=fit.no_match_below)}
    (HERE / "calibration_report.json").write_text(json.dumps(reports, indent=1) + "\n")
    print(json.dumps([fit.model_dump(mode="json")], indent=1))


if __name__ == "__main__":
    main()
