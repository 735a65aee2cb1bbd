"""Does a catalog-side feature fix the shipped fit's overconfidence on a new shoot? The top-1
product's nearest other product (cosine of their whitened product vectors): a product with a
look-alike in the catalog (orange / satsuma) is confused even when a photo's margin is wide.
Logistic fits on train rows (and shoot copies); ECE (10 bins) on val. Printed as a table.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from calibration_study import CACHE, MODEL, TRAIN, VAL
from imagematch.calibration import expected_calibration_error
from study import N_PRODUCTS, Recipe, lib, projection, vectors


def product_vectors():
    v = vectors(MODEL)
    proj = projection(v, Recipe("d"), np.array([], int))
    images = proj.apply(lib.l2n(v["catalog"].mean(axis=1)))
    return proj, lib.l2n(np.stack([images[lib.IMAGE_PRODUCT == p].mean(0) for p in range(N_PRODUCTS)]))


def features(s: np.ndarray, neighbour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.sort(s, axis=1)[:, ::-1]
    top1 = s.argmax(1)
    x = np.stack([order[:, 0], order[:, 0] - order[:, 1], neighbour[top1], order[:, 1] - order[:, 2]], axis=1)
    return x, top1


def main() -> None:
    proj, cents = product_vectors()
    sims = cents @ cents.T
    np.fill_diagonal(sims, -1)
    neighbour = sims.max(1)
    v = vectors(MODEL)
    s_tr = proj.apply(v["queries"][TRAIN]) @ cents.T
    s_va = proj.apply(v["queries"][VAL]) @ cents.T
    shoot = np.load(CACHE / f"{MODEL}-shoot.npz")["shoot"][TRAIN]
    s_sh = proj.apply(shoot.reshape(-1, shoot.shape[-1])) @ cents.T
    y_sh = np.repeat(lib.LABELS[TRAIN], shoot.shape[1])
    x_tr, t_tr = features(s_tr, neighbour)
    x_sh, t_sh = features(s_sh, neighbour)
    x_va, t_va = features(s_va, neighbour)
    r_tr, r_sh, r_va = t_tr == lib.LABELS[TRAIN], t_sh == y_sh, t_va == lib.LABELS[VAL]
    print("| fit on | features | val ECE | val conf ≥ 0.95 share / right | coefficients |\n|---|---|---|---|---|")
    for name, x, r in (("train photos", x_tr, r_tr), ("shoot copies", x_sh, r_sh),
                       ("train + shoot copies", np.concatenate([x_tr, x_sh]), np.concatenate([r_tr, r_sh]))):
        for cols, label in (([0, 1], "top, margin"), ([0, 1, 2], "top, margin, neighbour"),
                            ([0, 1, 2, 3], "top, margin, neighbour, margin 2–3")):
            model = LogisticRegression(C=100.0, max_iter=1000).fit(x[:, cols], r)
            conf = model.predict_proba(x_va[:, cols])[:, 1]
            sel = conf >= 0.95
            print(f"| {name} | {label} | {expected_calibration_error(conf, r_va):.3f} | {sel.mean():.2f} / "
                  f"{r_va[sel].mean():.3f} | {np.round(model.coef_[0], 1).tolist()} {model.intercept_[0]:.1f} |")


if __name__ == "__main__":
    main()
