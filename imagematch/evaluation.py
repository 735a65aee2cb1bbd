"""Measure retrieval quality: product-level recall@1/@5, MRR and throughput on labelled photos."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imagematch.embedder import Embedder
from imagematch.index import ProductIndex
from imagematch.pipeline import ImageLimits

__all__ = ["CONFIDENCE_THRESHOLDS", "EvalReport", "LabelledQuery", "evaluate", "load_queries"]

CONFIDENCE_THRESHOLDS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


@dataclass(frozen=True)
class LabelledQuery:
    image: Path
    product_id: str


@dataclass
class EvalReport:
    n: int = 0
    recall_at_1: float = 0.0
    recall_at_5: float = 0.0
    mrr: float = 0.0
    images_per_second: float = 0.0
    skipped: list[str] = field(default_factory=list)
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    top_scores: list[float] = field(default_factory=list)  # per query: the best product's score
    top_correct: list[bool] = field(default_factory=list)  # per query: is that product right?

    def confidence_at(self, threshold: float) -> dict[str, float]:
        """What a "no confident match" threshold does: ``coverage`` is the share of queries
        answered confidently (best score ≥ threshold), ``precision`` the share of those whose
        best product is right."""
        confident = [
            ok for score, ok in zip(self.top_scores, self.top_correct, strict=True) if score >= threshold
        ]
        return {
            "threshold": threshold,
            "coverage": round(len(confident) / len(self.top_scores), 4) if self.top_scores else 0.0,
            "precision": round(sum(confident) / len(confident), 4) if confident else 0.0,
        }

    def summary(self) -> dict[str, object]:
        """The machine-readable result (``--json``): keys ``recall@1``, ``recall@5``, ``n``…"""
        return {
            "recall@1": round(self.recall_at_1, 4),
            "recall@5": round(self.recall_at_5, 4),
            "mrr": round(self.mrr, 4),
            "n": self.n,
            "images_per_second": round(self.images_per_second, 2),
            "skipped": len(self.skipped),
            "per_category": self.per_category,
            "confidence": [self.confidence_at(t) for t in CONFIDENCE_THRESHOLDS],
        }


def load_queries(path: Path) -> list[LabelledQuery]:
    """Read ``{"image": path relative to the file, "product_id": …}`` lines."""
    queries = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            queries.append(LabelledQuery(path.parent / row["image"], str(row["product_id"])))
    return queries


def evaluate(
    queries: list[LabelledQuery],
    *,
    embedder: Embedder,
    index: ProductIndex,
    limits: ImageLimits,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Rank every product for each query; unreadable queries are skipped and listed."""
    report = EvalReport()
    hits1: dict[str, list[float]] = defaultdict(list)
    hits5: dict[str, list[float]] = defaultdict(list)
    reciprocal: list[float] = []
    started = time.perf_counter()
    depth = max(1, len(index.products))
    for start in range(0, len(queries), batch_size):
        chunk = queries[start : start + batch_size]
        images, kept = [], []
        for query in chunk:
            try:
                data = query.image.read_bytes()
                images.append(limits.decode(data))
                kept.append(query)
            except Exception as exc:  # report and go on: one bad photo must not stop an eval
                report.skipped.append(f"{query.image}: {exc}")
        rankings = index.search(embedder.embed(images), depth, embedder_id=embedder.embedder_id)
        for query, ranking in zip(kept, rankings, strict=True):
            ids = [m.product_id for m in ranking]
            rank = ids.index(query.product_id) + 1 if query.product_id in ids else 0
            category = index.products[query.product_id].category if query.product_id in index.products else ""
            hits1[category].append(float(rank == 1))
            hits5[category].append(float(0 < rank <= 5))
            reciprocal.append(1.0 / rank if rank else 0.0)
            report.top_scores.append(ranking[0].score if ranking else float("-inf"))
            report.top_correct.append(rank == 1)
        if progress:
            progress(len(chunk))
    elapsed = time.perf_counter() - started
    report.n = len(reciprocal)
    if report.n:
        all1 = [h for hs in hits1.values() for h in hs]
        all5 = [h for hs in hits5.values() for h in hs]
        report.recall_at_1 = sum(all1) / report.n
        report.recall_at_5 = sum(all5) / report.n
        report.mrr = sum(reciprocal) / report.n
        report.images_per_second = report.n / elapsed
        report.per_category = {
            cat: {
                "n": len(hits1[cat]),
                "recall@1": round(sum(hits1[cat]) / len(hits1[cat]), 4),
                "recall@5": round(sum(hits5[cat]) / len(hits5[cat]), 4),
            }
            for cat in sorted(hits1)
        }
    return report
