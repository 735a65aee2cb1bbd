"""The learning part of `bench/quality.py` (issue 23): the default recipe after learning from the
dev set's labelled `train` photos, and the learning curve (val R@1 with 0, 1, 2, 4 and all labelled
photos per product).

Each point runs `imagematch eval --learn-from LABELS --queries queries-val.jsonl`: a fresh data
dir, the catalog built, every labelled photo submitted as a job and labelled through the API's
code path, the learn jobs run, then val evaluated (query img/s measured in the same run). Which
photos of a product are labelled at 1, 2 and 4 per product is a seeded random draw (no ids or
file names decide it); the same draw for every run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CURVE = (0, 1, 2, 4, None)  # labelled photos per product; None: all of them
SEED = 0


def train_labels(dataset: Path, per_product: int | None) -> list[dict[str, Any]]:
    """The train lines, at most ``per_product`` per product (seeded random choice)."""
    rows = [json.loads(line) for line in (dataset / "queries.jsonl").read_text().splitlines() if line]
    train = [row for row in rows if row.get("split") == "train"]
    if per_product is None:
        return train
    rng = random.Random(SEED)
    by_product: dict[str, list[dict[str, Any]]] = {}
    for row in train:
        by_product.setdefault(row["product_id"], []).append(row)
    return [
        row for members in by_product.values() for row in rng.sample(members, min(per_product, len(members)))
    ]


def eval_after_learning(dataset: Path, labels: list[dict[str, Any]], data_dir: Path) -> dict[str, Any]:
    """`imagematch eval --learn-from` on val with ``labels`` (image paths relative to the dataset)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as file:
        for row in labels:
            file.write(json.dumps({**row, "image": str((dataset / row["image"]).resolve())}) + "\n")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEMATCH_")}
        env |= {"IMAGEMATCH_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "imagematch.cli", "eval",
                   "--catalog", str(dataset / "catalog" / "products.json"),
                   "--queries", str(dataset / "queries-val.jsonl"), "--json"]  # fmt: skip
        if labels:
            command += ["--learn-from", file.name]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        Path(file.name).unlink()


def learning_results(dataset: Path, data_dir: Path, *, curve: bool) -> dict[str, Any]:
    """The "learned" row (all train labels) and, with ``curve``, each curve point's val figures."""
    out: dict[str, Any] = {"learned": eval_after_learning(dataset, train_labels(dataset, None), data_dir)}
    if curve:
        out["curve"] = {}
        for n in CURVE:
            result = (
                out["learned"]
                if n is None
                else eval_after_learning(dataset, train_labels(dataset, n), data_dir)
            )
            out["curve"]["all" if n is None else str(n)] = {
                key: result[key] for key in ("recall@1", "recall@5", "mrr", "n", "images_per_second")
            }
    return out


def learning_lines(saved: dict[str, Any]) -> list[str]:
    """BENCHMARKS.md lines: the learned row (val) and the curve."""
    learned = saved.get("learned")
    if not learned:
        return []
    lines = ["", "### Learning from labelled photos (`imagematch eval --learn-from`)", "",
             "The default recipe after learning from the 486 labelled **train** photos through the feedback "
             "path (learned references, `imagematch/index/scoring.py`), evaluated on **val** (a new shoot). "
             "Goal (issue 23): val R@1 ≥ 0.82 and R@5 ≥ 0.99 at ≥ 10 query img/s.", "",
             "| variant | val R@1 | val R@5 | val MRR | query img/s | measured |",
             "|---|---|---|---|---|---|",
             f"| default + learned from train labels | {learned['recall@1']} | {learned['recall@5']} "
             f"| {learned['mrr']} | {learned['images_per_second']} "
             f"| {learned.get('measured', '-')} |"]  # fmt: skip
    curve = saved.get("curve")
    if curve:
        lines += ["", "Learning curve: val R@1 (R@5) with this many labelled train photos per product "
                  "(a seeded random draw; 'all' is about 6):", "",
                  "| labelled per product | " + " | ".join(curve) + " |",
                  "|---|" + "---|" * len(curve),
                  "| val R@1 | " + " | ".join(str(p["recall@1"]) for p in curve.values()) + " |",
                  "| val R@5 | " + " | ".join(str(p["recall@5"]) for p in curve.values()) + " |"]  # fmt: skip
    return lines
