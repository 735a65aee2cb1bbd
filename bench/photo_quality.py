"""Photo quality tier: are flagged photos wrong more often? Picks the QualityBar thresholds.

Usage: `python bench/photo_quality.py [--data-dir DIR] [--limit N]` (part of `make bench`).

Matches every dev-set query photo (`../shared/bench/grocery`, default model and settings, the
code `imagematch eval` runs) and measures its quality signals (`imagematch.quality`). For each
signal, candidate thresholds are the 2nd…25th percentiles of the *train* split; a threshold is
worth flagging at when the photos below it are wrong at top-1 clearly more often than the rest.
The chosen bar is then reported on the *val* split, which played no part in choosing. Degraded
copies of the val photos (blurred, darkened, overexposed, shrunk) show what the flags catch and
what the degradation costs. Writes the `photo-quality` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown_sections import replace_section

REPO = Path(__file__).resolve().parents[1]
# The dev set sits beside the checkout (../shared); a worktree one level deeper finds it too.
GROCERY = next(
    (
        p / "shared" / "bench" / "grocery"
        for p in (REPO.parent, REPO.parent.parent)
        if (p / "shared").exists()
    ),
    REPO.parent / "shared" / "bench" / "grocery",
)
PERCENTILES = (2, 5, 10, 15, 20, 25)
MIN_FLAGGED = 10  # fewer flagged train photos than this: the error rate below the threshold is noise
MIN_LIFT = 1.5  # flagged photos must be wrong ≥ this many times as often as unflagged ones

# signal -> (direction, the QualityBar field): "low" flags values below the threshold.
SIGNALS = {
    "sharpness": ("low", "min_sharpness"),
    "brightness": ("low", "min_brightness"),
    "brightness_high": ("high", "max_brightness"),
    "clipped": ("high", "max_clipped_share"),
}

DEGRADATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "original": lambda im: im,
    "blurred (Gaussian r=3)": lambda im: im.filter(ImageFilter.GaussianBlur(3)),
    "dark (×0.2 brightness)": lambda im: ImageEnhance.Brightness(im).enhance(0.2),
    "overexposed (×2.5 brightness)": lambda im: ImageEnhance.Brightness(im).enhance(2.5),
    "shrunk to 120 px": lambda im: im.resize((120, 120), Image.Resampling.BICUBIC),
}


@dataclass
class Row:
    split: str
    correct: bool
    signals: dict[str, float]


def signal_values(signals: dict[str, float], name: str) -> float:
    if name == "brightness_high":
        return signals["brightness"]
    if name == "clipped":
        return max(signals["dark_share"], signals["bright_share"])
    return signals[name]


def measure(
    services: object, queries: list[dict[str, str]], degrade: Callable[[Image.Image], Image.Image]
) -> list[Row]:
    from imagematch.images import decode_image
    from imagematch.quality import measure_quality

    rows: list[Row] = []
    batch = 16
    for start in range(0, len(queries), batch):
        chunk = queries[start : start + batch]
        photos = [
            degrade(decode_image((GROCERY / q["image"]).read_bytes(), max_bytes=10**8, max_pixels=10**8))
            for q in chunk
        ]
        results = services.matcher.match_images(photos, top_k=1)  # type: ignore[attr-defined]
        for query, photo, result in zip(chunk, photos, results, strict=True):
            best = result.matches[0].product_id if result.matches else None
            signals = measure_quality(photo).model_dump(exclude={"phash"})
            rows.append(Row(query.get("split", "val"), best == query["product_id"], signals))
    return rows


def error_rates(rows: list[Row], flagged: Callable[[Row], bool]) -> dict[str, float]:
    hit = [r for r in rows if flagged(r)]
    rest = [r for r in rows if not flagged(r)]
    err_hit = sum(not r.correct for r in hit) / len(hit) if hit else 0.0
    err_rest = sum(not r.correct for r in rest) / len(rest) if rest else 0.0
    return {"n": len(rows), "flagged": len(hit), "share": len(hit) / len(rows) if rows else 0.0,
            "err_flagged": err_hit, "err_rest": err_rest,
            "lift": err_hit / err_rest if err_rest else float("inf")}  # fmt: skip


def flag_by(name: str, threshold: float) -> Callable[[Row], bool]:
    direction = SIGNALS[name][0]
    if direction == "low":
        return lambda r: signal_values(r.signals, name) < threshold
    return lambda r: signal_values(r.signals, name) > threshold


def sweep(train: list[Row], name: str) -> tuple[list[tuple[float, dict[str, float]]], float | None]:
    """Candidate thresholds with their train error rates, and the chosen one (None: no lift)."""
    values = np.array([signal_values(r.signals, name) for r in train])
    direction = SIGNALS[name][0]
    candidates = [float(np.percentile(values, p if direction == "low" else 100 - p)) for p in PERCENTILES]
    table = [
        (round(t, 4 if name == "clipped" else 1), error_rates(train, flag_by(name, t))) for t in candidates
    ]
    # The most inclusive threshold whose flagged photos are still clearly worse than the rest.
    good = [t for t, r in table if r["flagged"] >= MIN_FLAGGED and r["lift"] >= MIN_LIFT]
    return table, (good[-1] if good else None)


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(rows: list[Row], degraded: dict[str, list[Row]], embedder_id: str) -> tuple[str, dict[str, float]]:
    from imagematch.quality import QualityBar, QualitySignals, assess_quality

    train = [r for r in rows if r.split == "train"]
    val = [r for r in rows if r.split == "val"]
    default = QualityBar()
    lines = [
        "## Photo quality tier (`bench/photo_quality.py`)",
        "",
        f"Model `{embedder_id}` (default settings) on the grocery dev set: {len(train)} train and {len(val)} "
        f"val photos, all {rows[0].signals['width']:.0f}×{rows[0].signals['height']:.0f} px, so resolution "
        "is judged on shrunk copies below. Top-1 error: share of photos whose best product is wrong. "
        "Thresholds are chosen on train only: the most inclusive percentile "
        f"(of {', '.join(map(str, PERCENTILES))}) "
        f"whose flagged photos (≥ {MIN_FLAGGED}) are wrong ≥ {MIN_LIFT}× as often as the others.",
        "",
        "### Per signal, on train",
        "",
        "| signal | flag when | flagged | error flagged | error others | × |",
        "|---|---|---|---|---|---|",
    ]
    chosen: dict[str, float] = {}
    for name, (direction, field) in SIGNALS.items():
        table, pick = sweep(train, name)
        for threshold, r in table:
            mark = " **(chosen)**" if threshold == pick else ""
            op = "<" if direction == "low" else ">"
            lines.append(f"| {name} | {op} {threshold}{mark} | {r['flagged']} ({pct(r['share'])}) | "
                         f"{pct(r['err_flagged'])} | {pct(r['err_rest'])} | {r['lift']:.2f} |")  # fmt: skip
        chosen[field] = pick if pick is not None else getattr(default, field)
    bar = QualityBar(**{**default.__dict__, **chosen})

    def flagged(r: Row) -> bool:
        return assess_quality(QualitySignals(**r.signals, phash="0" * 16), bar).low_quality

    lines += ["", "### The bar (`QualityBar`), train and val", "",
              "Chosen: " + ", ".join(f"`{k}={v}`" for k, v in bar.__dict__.items()) + ".", "",
              "| split | photos | flagged low_quality | top-1 error flagged | top-1 error others | × |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for split, subset in (("train", train), ("val", val)):
        r = error_rates(subset, flagged)
        lines.append(f"| {split} | {r['n']} | {r['flagged']} ({pct(r['share'])}) | {pct(r['err_flagged'])} | "
                     f"{pct(r['err_rest'])} | {r['lift']:.2f} |")  # fmt: skip
    lines += ["", "### Degraded copies of the val photos", "",
              "| copy | top-1 error | flagged low_quality |", "|---|---|---|"]  # fmt: skip
    for name, subset in degraded.items():
        err = sum(not r.correct for r in subset) / len(subset)
        lines.append(f"| {name} | {pct(err)} | {pct(sum(map(flagged, subset)) / len(subset))} |")
    return "\n".join(lines), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="scratch data dir (reuse it to keep the catalog cache)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument("--reuse", action="store_true", help="re-render the rows measured in --data-dir")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from imagematch.app import build_services
    from imagematch.config import Settings
    from imagematch.runtime import tune_allocator
    from index_builder import rebuild_catalog_index

    tune_allocator()
    queries = [json.loads(line) for line in (GROCERY / "queries.jsonl").read_text().splitlines() if line]
    queries = queries[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        measured = data_dir / "photo_quality_rows.json"  # --reuse: re-render without re-matching
        if args.reuse and measured.exists():
            saved = json.loads(measured.read_text())
        else:
            services = build_services(Settings(data_dir=data_dir, database_url="memory://"))
            rebuild_catalog_index(services, str(GROCERY / "catalog" / "products.json"))
            rows = measure(services, queries, DEGRADATIONS["original"])
            val = [q for q in queries if q.get("split") == "val"]
            degraded = {"original": [r for r in rows if r.split == "val"]}
            degraded |= {name: measure(services, val, fn) for name, fn in list(DEGRADATIONS.items())[1:]}
            saved = {"embedder": services.embedder.embedder_id, "rows": [r.__dict__ for r in rows],
                     "degraded": {k: [r.__dict__ for r in v] for k, v in degraded.items()}}  # fmt: skip
            services.close()
            measured.write_text(json.dumps(saved))
    rows = [Row(**r) for r in saved["rows"]]
    degraded = {k: [Row(**r) for r in v] for k, v in saved["degraded"].items()}
    body, chosen = render(rows, degraded, saved["embedder"])
    path = REPO / "BENCHMARKS.md"
    path.write_text(replace_section(path.read_text(), "photo-quality", body))
    print(body)
    print(f"chosen: {chosen}; wrote {path}")


if __name__ == "__main__":
    main()
