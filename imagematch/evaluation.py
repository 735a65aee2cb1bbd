"""Measure retrieval quality: product-level recall@1/@5, MRR and throughput on labelled photos.

Queries may carry a ``split`` (e.g. ``train``: shot beside the catalog's own photos; ``val``: a new
shoot). Every figure is then reported per split as well as overall, because a split of photos from
the catalog's own shoot flatters a model that customers' new photos will not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from imagematch.calibration import Calibration, calibration_report
from imagematch.embedder import Embedder
from imagematch.index import ProductIndex
from imagematch.pipeline import ImageLimits

__all__ = ["CONFIDENCE_THRESHOLDS", "EvalReport", "LabelledQuery", "QueryOutcome", "evaluate", "load_queries"]

CONFIDENCE_THRESHOLDS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


@dataclass(frozen=True)
class LabelledQuery:
    image: Path
    product_id: str
    split: str | None = None


@dataclass(frozen=True)
class QueryOutcome:
    """Where the right product landed for one query: ``rank`` 1 is best, 0 means not ranked."""

    category: str
    split: str | None
    rank: int
    top_score: float
    confidence: float | None = None  # the calibrated probability that top-1 is right, if a fit exists


def _recall(outcomes: list[QueryOutcome], k: int) -> float:
    return sum(0 < o.rank <= k for o in outcomes) / len(outcomes) if outcomes else 0.0


def _mrr(outcomes: list[QueryOutcome]) -> float:
    return sum(1.0 / o.rank for o in outcomes if o.rank) / len(outcomes) if outcomes else 0.0


def _confidence(outcomes: list[QueryOutcome], threshold: float) -> dict[str, float]:
    confident = [o.rank == 1 for o in outcomes if o.top_score >= threshold]
    return {
        "threshold": threshold,
        "coverage": round(len(confident) / len(outcomes), 4) if outcomes else 0.0,
        "precision": round(sum(confident) / len(confident), 4) if confident else 0.0,
    }


def _metrics(
    outcomes: list[QueryOutcome], band_limits: tuple[float, float] | None = None
) -> dict[str, object]:
    out: dict[str, object] = {
        "n": len(outcomes),
        "recall@1": round(_recall(outcomes, 1), 4),
        "recall@5": round(_recall(outcomes, 5), 4),
        "mrr": round(_mrr(outcomes), 4),
    }
    calibrated = [o for o in outcomes if o.confidence is not None]
    if calibrated and band_limits:
        out["calibration"] = calibration_report(
            [o.confidence for o in calibrated if o.confidence is not None],
            [o.rank == 1 for o in calibrated],
            confident_at=band_limits[0],
            no_match_below=band_limits[1],
        )
    return out


@dataclass
class EvalReport:
    outcomes: list[QueryOutcome] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    band_limits: tuple[float, float] | None = None  # the fit's (confident_at, no_match_below), if any

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def recall_at_1(self) -> float:
        return _recall(self.outcomes, 1)

    @property
    def recall_at_5(self) -> float:
        return _recall(self.outcomes, 5)

    @property
    def mrr(self) -> float:
        return _mrr(self.outcomes)

    @property
    def images_per_second(self) -> float:
        return self.n / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def splits(self) -> list[str]:
        """The splits the queries carry, sorted; empty when none carries one."""
        return sorted({o.split for o in self.outcomes if o.split is not None})

    def of_split(self, split: str | None) -> list[QueryOutcome]:
        """The outcomes of one split (all of them for ``None``)."""
        return self.outcomes if split is None else [o for o in self.outcomes if o.split == split]

    def per_split(self) -> dict[str, dict[str, object]]:
        """Recall@1/@5, MRR and n for each split (empty when queries carry none)."""
        return {split: _metrics(self.of_split(split), self.band_limits) for split in self.splits}

    @property
    def per_category(self) -> dict[str, dict[str, float]]:
        categories = sorted({o.category for o in self.outcomes})
        rows: dict[str, dict[str, float]] = {}
        for category in categories:
            members = [o for o in self.outcomes if o.category == category]
            rows[category] = {
                "n": len(members),
                "recall@1": round(_recall(members, 1), 4),
                "recall@5": round(_recall(members, 5), 4),
            }
        return rows

    def confidence_at(self, threshold: float, split: str | None = None) -> dict[str, float]:
        """What a "no confident match" threshold does (on one split, or on all queries):
        ``coverage`` is the share of queries answered confidently (best score ≥ threshold),
        ``precision`` the share of those whose best product is right."""
        return _confidence(self.of_split(split), threshold)

    def summary(self, thresholds: Iterable[float] = CONFIDENCE_THRESHOLDS) -> dict[str, object]:
        """The machine-readable result (``--json``): overall ``recall@1``, ``recall@5``, ``mrr``,
        ``n``…, plus ``per_split`` (each split's metrics and confidence table) when queries carry one."""
        levels = list(thresholds)
        per_split = {
            split: {**row, "confidence": [self.confidence_at(t, split) for t in levels]}
            for split, row in self.per_split().items()
        }
        return {
            **_metrics(self.outcomes, self.band_limits),
            "images_per_second": round(self.images_per_second, 2),
            "skipped": len(self.skipped),
            "per_split": per_split,
            "per_category": self.per_category,
            "confidence": [self.confidence_at(t) for t in levels],
        }


def load_queries(path: Path) -> list[LabelledQuery]:
    """Read ``{"image": path relative to the file, "product_id": …, "split"?: …}`` lines."""
    queries = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            split = row.get("split")
            queries.append(
                LabelledQuery(
                    path.parent / row["image"], str(row["product_id"]), None if split is None else str(split)
                )
            )
    return queries


def evaluate(
    queries: list[LabelledQuery],
    *,
    embedder: Embedder,
    index: ProductIndex,
    limits: ImageLimits,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    calibration: Calibration | None = None,
) -> EvalReport:
    """Rank every product for each query; unreadable queries are skipped and listed. With a
    ``calibration`` each outcome carries its confidence (and the summary its ECE)."""
    report = EvalReport(
        band_limits=(calibration.confident_at, calibration.no_match_below) if calibration else None
    )
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
            product = index.products.get(query.product_id)
            report.outcomes.append(
                QueryOutcome(
                    category=product.category if product else "",
                    split=query.split,
                    rank=rank,
                    top_score=ranking[0].score if ranking else float("-inf"),
                    confidence=calibration.assess([m.score for m in ranking[:2]])[0] if calibration else None,
                )
            )
        if progress:
            progress(len(chunk))
    report.elapsed_seconds = time.perf_counter() - started
    return report
