"""Photo quality tier: are flagged photos wrong more often? Picks the QualityBar thresholds.

Usage: `python bench/photo_quality.py [--data-dir DIR] [--limit N]` (part of `make bench`).

Matches every dev-set query photo (`../shared/bench/grocery`, default model and settings, the
code `imagematch eval` runs) and measures its quality signals (`imagematch.quality`), plus
degraded copies (blurred, darkened, overexposed, shrunk) that stand in for the bad photos the dev
set lacks. Per signal it reports, for thresholds at percentiles of the natural *train* photos,
how much more often the photos flagged are wrong at top-1 and how many degraded train copies are
caught; the chosen threshold is the 1st percentile (a false-alarm budget), since on the natural
photos no threshold separates right from wrong answers beyond noise. The chosen bar is then
reported on the *val* split (natural, and natural + degraded), which played no part in choosing.
Writes the `photo-quality` section of BENCHMARKS.md; `--data-dir D --reuse` re-renders from D.
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
PERCENTILES = (1, 2, 5, 10)  # of the natural train photos: thresholds whose error lift is shown
TAIL = 0.5  # % of natural train photos a threshold may flag (false alarms) before the gap rule

# signal -> (direction, the QualityBar field): "low" flags values below the threshold.
SIGNALS = {
    "sharpness": ("low", "min_sharpness"),
    "brightness": ("low", "min_brightness"),
    "brightness_high": ("high", "max_brightness"),
    "clipped": ("high", "max_clipped_share"),
}

# Which degraded copies a signal is meant to catch.
CATCHES = {
    "sharpness": ["blurred (Gaussian r=3)"],
    "brightness": ["dark (×0.2 brightness)"],
    "brightness_high": ["overexposed (×2.5 brightness)"],
    "clipped": ["dark (×0.2 brightness)", "overexposed (×2.5 brightness)"],
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


def sweep(
    train: list[Row], train_degraded: dict[str, list[dict[str, float]]], name: str
) -> tuple[list[tuple[str, float, dict[str, float], float]], float]:
    """Rows (label, threshold, train error rates, share of degraded train copies caught) for
    thresholds at percentiles of the natural train photos and for the chosen one: midway in the
    gap between the natural photos' 0.5 % tail and the degraded copies' 95 % bulk, or at that
    tail when they overlap (a good photo is then never flagged for this signal)."""
    values = np.array([signal_values(r.signals, name) for r in train])
    copies = [c for k in CATCHES[name] for c in train_degraded[k]]
    low = SIGNALS[name][0] == "low"
    tail = float(np.percentile(values, TAIL if low else 100 - TAIL))
    bulk = float(np.percentile([signal_values(c, name) for c in copies], 95 if low else 5))
    gap = bulk < tail if low else bulk > tail
    chosen = round((tail + bulk) / 2 if gap else tail, 4 if name == "clipped" else 1)
    candidates = [(f"{p} %", float(np.percentile(values, p if low else 100 - p))) for p in PERCENTILES]
    table = []
    for label, t in [*candidates, ("gap midpoint" if gap else "tail (no gap)", chosen)]:
        t = round(t, 4) if name == "clipped" else round(t, 1)
        flagged = flag_by(name, t)
        caught = sum(flagged(Row("train", False, c)) for c in copies) / len(copies)
        table.append((label, t, error_rates(train, flagged), caught))
    return table, chosen


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(
    rows: list[Row],
    degraded: dict[str, list[Row]],
    train_degraded: dict[str, list[dict[str, float]]],
    embedder_id: str,
) -> tuple[str, dict[str, float]]:
    from imagematch.quality import QualityBar, QualitySignals, assess_quality

    train = [r for r in rows if r.split == "train"]
    val = [r for r in rows if r.split == "val"]
    default = QualityBar()
    lines = [
        "## Photo quality tier (`bench/photo_quality.py`)",
        "",
        f"Model `{embedder_id}` (default settings) on the grocery dev set: {len(train)} train and "
        f"{len(val)} val photos, all {rows[0].signals['width']:.0f}×{rows[0].signals['height']:.0f} px. "
        "Top-1 error: share of photos whose best product is wrong; × = how many times as often flagged "
        "photos are wrong as the others. Degraded copies (Gaussian blur r=3, brightness ×0.2, brightness "
        "×2.5, shrunk to 120 px) stand in for the bad photos the dev set lacks.",
        "",
        "**Finding.** The dev set's own photos are nearly all usable: on them the signals barely separate "
        "right from wrong answers (× near 1 and unstable: sharpness below its 2nd percentile is wrong 2.1× "
        "as often on train, yet that bar's val photos are wrong *less* often). Choosing thresholds by error "
        "lift on these photos would fit noise. So each threshold sits in the gap between the natural train "
        f"photos (all but their {TAIL} % tail pass) and the degraded train copies (95 % are caught); val, "
        "which played no part, then measures the flag on natural and degraded photos. Degraded copies are "
        "wrong 1.1–1.8× as often as the originals (last table); those are the photos the flag is for.",
        "",
        "### Per signal, on train",
        "",
        "| signal | flag when | natural percentile | natural photos flagged | error flagged | error others "
        "| × "
        "| degraded copies caught |",
        "|---|---|---|---|---|---|---|---|",
    ]
    chosen: dict[str, float] = {}
    for name, (direction, field) in SIGNALS.items():
        table, pick = sweep(train, train_degraded, name)
        for label, threshold, r, caught in table:
            mark = " **(chosen)**" if label[0].isalpha() else ""
            op = "<" if direction == "low" else ">"
            cells = [name, f"{op} {threshold}{mark}", label, f"{r['flagged']} ({pct(r['share'])})",
                     pct(r["err_flagged"]), pct(r["err_rest"]), f"{r['lift']:.2f}",
                     f"{pct(caught)} ({', '.join(CATCHES[name])})"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        chosen[field] = pick
    bar = QualityBar(**{**default.__dict__, **chosen})

    def flagged(r: Row) -> bool:
        return assess_quality(QualitySignals(**r.signals, phash="0" * 16), bar).low_quality

    pool = val + [r for name, rs in degraded.items() if name != "original" for r in rs]
    lines += ["", "### The bar (`QualityBar` defaults), train and val", "",
              "Chosen: " + ", ".join(f"`{k}={v}`" for k, v in bar.__dict__.items()) + " (`min_side`: "
              "below the embedder's input size, not measurable here).", "",
              "| photos | n | flagged low_quality | top-1 error flagged | top-1 error others | × |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for label, subset in (("train, natural", train), ("val, natural", val),
                          ("val, natural + degraded copies", pool)):  # fmt: skip
        r = error_rates(subset, flagged)
        lines.append(f"| {label} | {r['n']} | {r['flagged']} ({pct(r['share'])}) | {pct(r['err_flagged'])} | "
                     f"{pct(r['err_rest'])} | {r['lift']:.2f} |")  # fmt: skip
    lines += ["", "### Degraded copies of the val photos", "",
              "| copy | top-1 error | flagged low_quality |", "|---|---|---|"]  # fmt: skip
    for name, subset in degraded.items():
        err = sum(not r.correct for r in subset) / len(subset)
        lines.append(f"| {name} | {pct(err)} | {pct(sum(map(flagged, subset)) / len(subset))} |")
    return "\n".join(lines), chosen


def signals_only(
    queries: list[dict[str, str]], degrade: Callable[[Image.Image], Image.Image]
) -> list[dict[str, float]]:
    """Quality signals of degraded copies (no matching: choosing thresholds needs none)."""
    from imagematch.images import decode_image
    from imagematch.quality import measure_quality

    return [
        measure_quality(
            degrade(decode_image((GROCERY / q["image"]).read_bytes(), max_bytes=10**8, max_pixels=10**8))
        ).model_dump(exclude={"phash"})
        for q in queries
    ]


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
        if "train_degraded" not in saved:  # signals only: cheap
            train_queries = [q for q in queries if q.get("split") == "train"]
            copies = list(DEGRADATIONS.items())[1:]
            saved["train_degraded"] = {k: signals_only(train_queries, fn) for k, fn in copies}
        measured.write_text(json.dumps(saved))
    rows = [Row(**r) for r in saved["rows"]]
    degraded = {k: [Row(**r) for r in v] for k, v in saved["degraded"].items()}
    body, chosen = render(rows, degraded, saved["train_degraded"], saved["embedder"])
    path = REPO / "BENCHMARKS.md"
    path.write_text(replace_section(path.read_text(), "photo-quality", body))
    print(body)
    print(f"chosen: {chosen}; wrote {path}")


if __name__ == "__main__":
    main()
