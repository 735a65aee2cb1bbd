"""Retrieval-quality benchmark: runs `imagematch eval` on the shared grocery set for every pipeline
variant below and writes the results into BENCHMARKS.md (between the `quality` markers; other
sections of the file are kept). Usage: `make bench`, or `python bench/quality.py [--only default]`.
A full run also learns from the dev set's labelled train photos (`imagematch eval --learn-from`,
`bench/quality_learning.py`): the "default + learned" row and the learning curve (`--learning`).
The default's calibrated confidence (ECE, bands) is drawn as `docs/reliability.png`.

Each variant is the product pipeline with different settings (environment variables), so the
table measures exactly what `imagematch eval` ships. Catalog embeddings are cached per
(model, views) in one scratch data dir, so variants sharing a model embed the catalog once.
Prints the figures and writes them; it asserts nothing (machines are noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import markdown_sections  # bench/ is on sys.path when run as a script
import quality_calibration
import quality_learning

REPO = Path(__file__).resolve().parents[1]
GROCERY = REPO.parent / "shared" / "bench" / "grocery"
START, END = "<!-- quality:start -->", "<!-- quality:end -->"
RESULTS = REPO / "bench" / "quality_results.json"  # every variant's last full run, per model
RESEARCH = ("bench/research/2026-11-23-efficientnet", "bench/research/2026-11-30-new-shoots")

# name -> (what it is, settings). The ladder adds one lever at a time, then alternatives.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "baseline": (
        "lite0 224 px, head mean pool, single view, no whitening, max over images (the naive start)",
        {"MODEL": "efficientnet:lite0@224/mean", "CATALOG_VIEWS": "single", "WHITENING": "none",
         "PRODUCT_SCORING": "max"},
    ),
    "centroid": (
        "+ product centroid instead of best image",
        {"MODEL": "efficientnet:lite0@224/mean", "CATALOG_VIEWS": "single", "WHITENING": "none",
         "PRODUCT_SCORING": "centroid"},
    ),
    "288-multilayer": (
        "+ 288 px and 3-layer pooling",
        {"MODEL": "efficientnet:lite0", "CATALOG_VIEWS": "single", "WHITENING": "none",
         "PRODUCT_SCORING": "centroid"},
    ),
    "whitened": (
        "+ within-product whitening fitted on the catalog",
        {"MODEL": "efficientnet:lite0", "CATALOG_VIEWS": "single", "WHITENING": "product",
         "PRODUCT_SCORING": "centroid"},
    ),
    "default": (
        "+ 14-view catalog embeddings (**the default configuration**)",
        {},
    ),
    "shoot-views": (
        "default + 6 shoot-like copies per catalog image (light, colour cast, blur, warp, JPEG)",
        {"CATALOG_VIEWS": "shoot"},
    ),
    "label-free": (
        "default, but image-level (label-free) whitening: no product grouping used",
        {"WHITENING": "image"},
    ),
    "default-max": (
        "default, but ranking by best image instead of centroid",
        {"PRODUCT_SCORING": "max"},
    ),
    "lite2": (
        "default recipe on EfficientNet-Lite2 at 260 px",
        {"MODEL": "efficientnet:lite2"},
    ),
    "fusion": (
        "default recipe on lite0@320 + lite2@260 concatenated (high-quality option)",
        {"MODEL": "efficientnet:lite0@320+efficientnet:lite2@260"},
    ),
}  # fmt: skip


def run_eval(settings: dict[str, str], data_dir: Path, limit: int | None, dataset: Path) -> dict[str, object]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMAGEMATCH_")},
        **{f"IMAGEMATCH_{key}": value for key, value in settings.items()},
        "IMAGEMATCH_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable, "-m", "imagematch.cli", "eval",
        "--catalog", str(dataset / "catalog" / "products.json"),
        "--queries", str(dataset / "queries.jsonl"),
        "--json",
    ]  # fmt: skip
    if limit:
        command += ["--limit", str(limit)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _split(result: dict[str, object], split: str) -> dict[str, object]:
    per_split = result.get("per_split") or {}
    assert isinstance(per_split, dict)
    row = per_split.get(split, {})
    assert isinstance(row, dict)
    return row


def _cell(value: object) -> str:
    return "–" if value is None else str(value)  # None: measured before queries carried splits


def render(results: dict[str, dict[str, object]], model: str | None) -> list[str]:
    which = (
        f"`--model {model}`: the model-independent variants on that model" if model else "EfficientNet-Lite"
    )
    lines = [
        START,
        "## Retrieval quality (`bench/quality.py`)",
        "",
        f"Written by `bench/quality.py` on {datetime.now(UTC):%Y-%m-%d} ({platform.machine()}, "
        f"{os.cpu_count()} cores, CPU only; {which}). Dev set: `../shared/bench/grocery` (81 products, "
        "782 query photos in two splits: **val**, 296 photos from a new shoot, the number that decides, "
        "and train, 486 photos shot beside the catalog's own). Query img/s is end to end (decode, "
        "embed, project, search) at batch 16 over all 782; it moves ±10-20 % on a shared machine, "
        "so compare it with the default's in the same run. Nothing is fitted on queries: the "
        "whitening and centroids use catalog images only.",
        "",
        "### Retrieval variants (`imagematch eval`)",
        "",
        "| variant | what changes | val R@1 | val R@5 | val MRR | train R@1 | train R@5 | all R@1 "
        "| query img/s | measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        val, train = _split(r, "val"), _split(r, "train")
        cells = [val.get("recall@1"), val.get("recall@5"), val.get("mrr"), train.get("recall@1"),
                 train.get("recall@5"), r["recall@1"], r["images_per_second"], r.get("measured")]  # fmt: skip
        lines.append(f"| {name} | {VARIANTS[name][0]} | " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "Embedder ids: " + "; ".join(f"{name} `{r['embedder']}`" for name, r in results.items())]
    default = results.get("default")
    if default:
        lines += _default_details(default)
        lines += quality_calibration.calibration_lines(default)
    if not model:
        lines += quality_learning.learning_lines(saved_learning())
    lines += [
        "",
        "### What carries over to another model (`--model`)",
        "",
        "Model-independent: per-split evaluation, the catalog view sets, within-product whitening as a "
        "method, centroid scoring, the shoot-like copies (parameters set a priori). Tuned on "
        "EfficientNet-Lite0 and to re-check on OpenCLIP (`bench/quality.py --model "
        "open_clip:ViT-B-16/datacomp_xl_s13b_b90k` where its weights are cached): the shrinkage (0.3), "
        "whether whitening and the 14 views help at all, whether the shoot-like copies still hurt, "
        "the `IMAGEMATCH_MIN_SCORE` threshold (score scales differ per model); 288 px and 3-layer "
        "pooling are EfficientNet-only.",
        "",
        "### The wider studies",
        "",
        "About 200 variants (pooling, resolution, aspect handling, flip TTA, PCA whitening, re-ranking, "
        "multi-scale, …) were measured with research code before choosing the ladder above: "
        f"`{RESEARCH[0]}/`; the new-shoot study (val split; geometric verification, colour "
        f"histograms, shoot-like catalog views) is in `{RESEARCH[1]}/REPORT.md`.",
        END,
    ]
    return lines


def _default_details(default: dict[str, object]) -> list[str]:
    lines = ["", "### Default configuration: per category (all splits)", "",
             "| category | n | recall@1 | recall@5 |", "|---|---|---|---|"]  # fmt: skip
    per_category = default["per_category"]
    assert isinstance(per_category, dict)
    for category, row in per_category.items():
        lines.append(f"| {category} | {row['n']} | {row['recall@1']} | {row['recall@5']} |")
    lines += ["", "### Default configuration: \"no confident match\" threshold (`IMAGEMATCH_MIN_SCORE`), val",
              "", "Coverage = share of val photos answered with a confident best product (best score ≥ "
              "threshold); precision = share of those whose best product is right.", "",
              "| best score ≥ | coverage | precision |", "|---|---|---|"]  # fmt: skip
    confidence = _split(default, "val").get("confidence") or default["confidence"]
    assert isinstance(confidence, list)
    for row in confidence:
        lines.append(f"| {row['threshold']} | {row['coverage']} | {row['precision']} |")
    return lines


def write_section(lines: list[str], model: str | None) -> None:
    """Replace this script's section of BENCHMARKS.md (one per ``--model``), keeping the others."""
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    name = "quality" if not model else "quality-" + re.sub(r"[^\w-]+", "-", model).strip("-")
    body = "\n".join(line for line in lines if line not in (START, END))
    path.write_text(markdown_sections.replace_section(text, name, body))


def merge_results(new: dict[str, dict[str, object]], model: str | None) -> dict[str, dict[str, object]]:
    """Fold this run's results into RESULTS (one table per model) and return that model's table,
    in ladder order, so ``--only`` re-measures some rows and keeps the others (with their dates)."""
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    table = saved.setdefault(model or "efficientnet", {})
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    table.update({name: {**result, "measured": today} for name, result in new.items()})
    RESULTS.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    return {name: table[name] for name in VARIANTS if name in table}


def saved_learning() -> dict[str, object]:
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    learning: dict[str, object] = saved.get("learning", {})
    return learning


def measure_learning(dataset: Path, data_dir: Path, *, curve: bool) -> None:
    """Run the learning row (and curve) and fold it into RESULTS."""
    result = quality_learning.learning_results(dataset, data_dir, curve=curve)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result["learned"]["measured"] = f"{datetime.now(UTC):%Y-%m-%d}"
    saved["learning"] = {**saved.get("learning", {}), **result}
    RESULTS.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    val = result["learned"]
    print(f"learned: val R@1 {val['recall@1']}  R@5 {val['recall@5']}  {val['images_per_second']} img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run only these variants")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument(
        "--data-dir", type=Path, help="keep the embedding cache here between runs (default: a temporary dir)"
    )
    parser.add_argument(
        "--model",
        help="another embedder spec (e.g. open_clip:ViT-B-16/datacomp_xl_s13b_b90k): runs the variants "
        "that do not pin an EfficientNet model, on it",
    )
    parser.add_argument(
        "--dataset", type=Path, default=GROCERY, help="the grocery set (catalog/, queries.jsonl)"
    )
    parser.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md from saved results")
    parser.add_argument(
        "--learning",
        choices=["none", "row", "curve"],
        help="learning from the train labels (issue 23): its row, or the row and the learning curve "
        "(default: curve on a full run, none with --only)",
    )
    args = parser.parse_args()
    if args.render:
        write_section(render(merge_results({}, args.model), args.model), args.model)
        return
    if not args.dataset.exists():
        sys.exit(f"benchmark data not found at {args.dataset}")
    names = args.only or list(VARIANTS)
    if args.model:
        names = [name for name in names if "MODEL" not in VARIANTS[name][1]]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            settings = VARIANTS[name][1] | ({"MODEL": args.model} if args.model else {})
            result = run_eval(settings, args.data_dir or Path(tmp), args.limit, args.dataset)
            results[name] = result
            val = _split(result, "val")
            print(f"{name}: val R@1 {val.get('recall@1')}  R@5 {val.get('recall@5')}  all R@1 "
                  f"{result['recall@1']}  {result['images_per_second']} img/s", flush=True)  # fmt: skip
    learning = args.learning or ("none" if args.only or args.model or args.limit else "curve")
    if learning != "none":
        with tempfile.TemporaryDirectory() as tmp:
            measure_learning(args.dataset, args.data_dir or Path(tmp), curve=learning == "curve")
    if args.limit is None:
        results = merge_results(results, args.model)
        if "default" in results and not args.model:
            quality_calibration.draw_reliability(
                results["default"].get("per_split") or {}, REPO / quality_calibration.DIAGRAM
            )
    write_section(render(results, args.model), args.model)
    print(f"wrote {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
