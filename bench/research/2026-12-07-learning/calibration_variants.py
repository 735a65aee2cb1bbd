"""Calibration feature sets tried (fit on train, ECE on val): run from the repo root with PYTHONPATH=. ."""
import sys, numpy as np
sys.path.insert(0, "bench/research/2026-11-30-new-shoots"); sys.path.insert(0, "bench/research/2026-12-07-learning")
import lib
from imagematch.calibration import expected_calibration_error as ece
cat, q = lib.load("efficientnet_lite0_multi")
S = np.round(lib.whitened_scores(cat, q), 6)
srt = np.sort(S, 1)[:, ::-1]
top, m = srt[:, 0], srt[:, 0] - srt[:, 1]
m3 = srt[:, 0] - srt[:, 2]
right = (S.argmax(1) == lib.LABELS).astype(float)
tr, va = np.flatnonzero(~lib.VAL), lib.VAL_IDX
def fit(X, y, l2=1e-5):
    X = np.c_[X, np.ones(len(X))]; w = np.zeros(X.shape[1]); P = np.eye(X.shape[1]) * l2 * len(X); P[-1, -1] = 0
    for _ in range(100):
        p = 1/(1+np.exp(-X@w)); g = X.T@(p-y)+P@w; H = (X*(p*(1-p))[:,None]).T@X+P+1e-9*np.eye(len(w)); w -= np.linalg.solve(H, g)
    return w
def pred(X, w): return 1/(1+np.exp(-np.c_[X, np.ones(len(X))]@w))
feats = {"score+margin": np.c_[top, m], "margin": m[:, None], "score": top[:, None], "score+log margin": np.c_[top, np.log(m+1e-3)],
         "score+margin+margin3": np.c_[top, m, m3]}
for name, X in feats.items():
    w = fit(X[tr], right[tr]); pv = pred(X[va], w); pt = pred(X[tr], w)
    print(f"{name:25s} train ECE {ece(pt, right[tr]):.3f} val ECE {ece(pv, right[va]):.3f} val conf>=.95 cov {np.mean(pv>=.95):.3f} prec {right[va][pv>=.95].mean():.3f}")
# 2-fold CV stats on train to see whether overconfidence is visible within train
print("---")
w = fit(feats["score+margin"][tr], right[tr]); pv = pred(feats["score+margin"][va], w)
for t in (0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995):
    s = pv >= t
    print(f"val conf>={t}: coverage {s.mean():.3f} precision {right[va][s].mean():.3f} n {s.sum()}")
# operator-refit estimate: fit on one val half, measure the other (product-disjoint halves)
X = feats["score+margin"]
tot = []
for a, b in ((lib.HALF_A, lib.HALF_B), (lib.HALF_B, lib.HALF_A)):
    w2 = fit(X[a], right[a]); p2 = pred(X[b], w2); tot.append((p2, right[b]))
    print(f"cross-fit val half -> other half: ECE {ece(p2, right[b]):.3f}")
p2 = np.concatenate([t[0] for t in tot]); r2 = np.concatenate([t[1] for t in tot])
print(f"cross-fit pooled ECE {ece(p2, r2):.3f}")
for t in (0.9, 0.95):
    s = p2 >= t; print(f"  cross-fit conf>={t}: coverage {s.mean():.3f} precision {r2[s].mean():.3f}")
# train+val? no.

# --- second batch (per-query score normalisations) ---
rest = srt[:, 1:]
mu, sd = rest.mean(1), rest.std(1)
z = (top - mu) / sd; zm = m / sd
mu10 = srt[:, 1:11].mean(1)
feats = {"z": z[:, None], "z+zm": np.c_[z, zm], "score+margin+z": np.c_[top, m, z], "margin+ (top-mean top2..11)": np.c_[m, top - mu10],
         "score+margin+sd": np.c_[top, m, sd]}
for name, X in feats.items():
    w = fit(X[tr], right[tr]); pv = pred(X[va], w); pt = pred(X[tr], w)
    print(f"{name:28s} train ECE {ece(pt, right[tr]):.3f} val ECE {ece(pv, right[va]):.3f} val conf>=.95 cov {np.mean(pv>=.95):.3f} prec {right[va][pv>=.95].mean():.3f}")
