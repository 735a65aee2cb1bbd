"""Retrieval-quality benchmark: runs `imagematch eval` on the shared grocery set for every pipeline
variant below and writes the results into BENCHMARKS.md (between the `quality` markers; other
sections of the file are kept). Usage: `make bench`, or `python bench/quality.py [--only default]`.

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

REPO = Path(__file__).resolve().parents[1]
GROCERY = REPO.parent / "shared" / "bench" / "grocery"
START, END = "<!-- quality:start -->", "<!-- quality:end -->"
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


def run_eval(settings: dict[str, str], data_dir: Path, limit: int | None) -> dict[str, object]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMAGEMATCH_")},
        **{f"IMAGEMATCH_{key}": value for key, value in settings.items()},
        "IMAGEMATCH_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable, "-m", "imagematch.cli", "eval",
        "--catalog", str(GROCERY / "catalog" / "products.json"),
        "--queries", str(GROCERY / "queries.jsonl"),
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
        "| query img/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        val, train = _split(r, "val"), _split(r, "train")
        lines.append(
            f"| {name} | {VARIANTS[name][0]} | {val.get('recall@1')} | {val.get('recall@5')} "
            f"| {val.get('mrr')} | {train.get('recall@1')} | {train.get('recall@5')} | {r['recall@1']} "
            f"| {r['images_per_second']} |"
        )
    lines += ["", "Embedder ids: " + "; ".join(f"{name} `{r['embedder']}`" for name, r in results.items())]
    default = results.get("default")
    if default:
        lines += _default_details(default)
    lines += [
        "",
        "### The wider studies",
        "",
        "About 200 variants (pooling, resolution, aspect handling, flip TTA, PCA whitening, re-ranking, "
        "multi-scale, …) were measured with research code before choosing the ladder above: "
        f"`{RESEARCH[0]}/`; the new-shoot study (val split, geometric verification, shoot-like "
        f"augmentation, fusion speed, colour) is in `{RESEARCH[1]}/REPORT.md`.",
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


def write_section(lines: list[str]) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = "\n".join(lines)
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run only these variants")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument(
        "--model",
        help="another embedder spec (e.g. open_clip:ViT-B-16/datacomp_xl_s13b_b90k): runs the variants "
        "that do not pin an EfficientNet model, on it",
    )
    args = parser.parse_args()
    if not GROCERY.exists():
        sys.exit(f"benchmark data not found at {GROCERY}")
    names = args.only or list(VARIANTS)
    if args.model:
        names = [name for name in names if "MODEL" not in VARIANTS[name][1]]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            settings = VARIANTS[name][1] | ({"MODEL": args.model} if args.model else {})
            result = run_eval(settings, Path(tmp), args.limit)
            results[name] = result
            val = _split(result, "val")
            print(f"{name}: val R@1 {val.get('recall@1')}  R@5 {val.get('recall@5')}  all R@1 "
                  f"{result['recall@1']}  {result['images_per_second']} img/s", flush=True)  # fmt: skip
    write_section(render(results, args.model))
    print(f"wrote {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
