"""The confidence part of `bench/quality.py`: ECE on val, the bands, the reliability diagram.

`imagematch eval` reports, per split, the calibration of the confidence it attaches to each
answer (imagematch.calibration.calibration_report); this renders the val one for BENCHMARKS.md
and draws its reliability diagram (docs/reliability.png).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DIAGRAM = "docs/reliability.png"


def draw_reliability(per_split: dict[str, Any], path: Path) -> None:
    """Accuracy against mean confidence per bin, one line per split, the diagonal for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.8, 4.8), dpi=100)
    axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfectly calibrated")
    for split, colour in (("val", "#c0392b"), ("train", "#2471a3")):
        report = (per_split.get(split) or {}).get("calibration")
        if not report:
            continue
        bins = report["bins"]
        axes.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color=colour,
                  label=f"{split} (ECE {report['ece']:.3f})")  # fmt: skip
        for b in bins:
            axes.annotate(str(b["n"]), (b["confidence"], b["accuracy"]), fontsize=7, color=colour,
                          textcoords="offset points", xytext=(4, -10))  # fmt: skip
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (mean per bin)", ylabel="top-1 right (share)",
             title="Reliability of the shipped confidence fit")  # fmt: skip
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def calibration_lines(default: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md lines: ECE per split, the bands' share and precision on val, the diagram."""
    per_split = default.get("per_split") or {}
    reports = {split: row.get("calibration") for split, row in per_split.items() if row.get("calibration")}
    if not reports:
        return []
    lines = ["", "### Default configuration: calibrated confidence", "",
             "The confidence each answer carries (`imagematch/calibration.py`: logistic on the top "
             "score and the top-1 − top-2 margin, fitted on the **train** photos only) against how often "
             "top-1 is right. ECE: expected calibration error over 10 equal-width bins (goal ≤ 0.05 on val).",
             "", "| split | n | ECE | Confident: share / right | Check: share / right "
             "| No match: share / right |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for split, report in reports.items():
        bands = report["bands"]
        cells = [f"{bands[b]['share']} / {'–' if bands[b]['precision'] is None else bands[b]['precision']}"
                 for b in ("confident", "check", "no_match")]  # fmt: skip
        lines.append(f"| {split} | {per_split[split]['n']} | {report['ece']} | " + " | ".join(cells) + " |")
    lines += ["", f"![reliability diagram]({DIAGRAM})"]
    return lines
