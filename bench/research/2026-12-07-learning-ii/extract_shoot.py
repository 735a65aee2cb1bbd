"""Cache vectors of the `train` photos as another shoot might show them (the product's `shoot_view`:
light, colour cast, blur or warp, JPEG), two seeded copies each: a label-honest stand-in for photos
from a new shoot, for fitting the confidence calibration (`calibration_study.py`).

`python extract_shoot.py <model spec>` writes data/research/learning-ii/<slug>-shoot.npz with
`shoot` (782, 2, d) (only `train` rows filled).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from extract import CACHE, GROCERY, embed_all, load
from imagematch.embedder import load_embedder
from imagematch.representation import shoot_view
from imagematch.runtime import tune_allocator

COPIES = 2


def main() -> None:
    spec = sys.argv[1]
    tune_allocator()
    torch.set_num_threads(2)
    embedder = load_embedder(spec)
    queries = [json.loads(x) for x in (GROCERY / "queries.jsonl").read_text().splitlines() if x]
    rng = np.random.default_rng(0)
    out = None
    for i, query in enumerate(queries):
        if query["split"] != "train":
            continue
        photo = load(GROCERY / query["image"])
        vectors = embed_all(embedder, [shoot_view(photo, rng) for _ in range(COPIES)])
        if out is None:
            out = np.zeros((len(queries), COPIES, vectors.shape[1]), np.float32)
        out[i] = vectors
    slug = spec.replace(":", "_").replace("/", "_").replace("@", "_").replace("+", "__")
    np.savez(CACHE / f"{slug}-shoot.npz", shoot=out)


if __name__ == "__main__":
    main()
