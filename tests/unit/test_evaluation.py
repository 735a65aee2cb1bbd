"""`imagematch eval` figures: recall@1/@5, MRR and the confidence table, overall and per split."""

from __future__ import annotations

import json
from pathlib import Path

from imagematch.evaluation import EvalReport, QueryOutcome, load_queries


def _report() -> EvalReport:
    return EvalReport(
        outcomes=[
            QueryOutcome("Juice", "train", rank=1, top_score=0.6),
            QueryOutcome("Juice", "train", rank=1, top_score=0.5),
            QueryOutcome("Apple", "val", rank=1, top_score=0.4),
            QueryOutcome("Apple", "val", rank=2, top_score=0.3),
            QueryOutcome("Apple", "val", rank=0, top_score=0.1),  # right product not ranked
        ],
        elapsed_seconds=1.0,
    )


def test_each_split_gets_its_own_recall_and_mrr() -> None:
    summary = _report().summary()
    assert summary["n"] == 5 and summary["recall@1"] == 0.6 and summary["recall@5"] == 0.8
    per_split = summary["per_split"]
    assert isinstance(per_split, dict) and sorted(per_split) == ["train", "val"]
    assert per_split["train"]["recall@1"] == 1.0 and per_split["train"]["n"] == 2
    val = per_split["val"]
    assert (val["n"], val["recall@1"], val["recall@5"], val["mrr"]) == (3, 0.3333, 0.6667, 0.5)


def test_confidence_table_per_split() -> None:
    report = _report()
    assert report.confidence_at(0.35) == {"threshold": 0.35, "coverage": 0.6, "precision": 1.0}
    assert report.confidence_at(0.25, "val") == {"threshold": 0.25, "coverage": 0.6667, "precision": 0.5}
    per_split = report.summary(thresholds=[0.25])["per_split"]
    assert isinstance(per_split, dict) and per_split["val"]["confidence"][0]["coverage"] == 0.6667


def test_queries_without_a_split_report_no_splits(tmp_path: Path) -> None:
    lines = [{"image": "a.jpg", "product_id": "p1"}, {"image": "b.jpg", "product_id": 7, "split": "val"}]
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    queries = load_queries(path)
    assert [(q.image.name, q.product_id, q.split) for q in queries] == [
        ("a.jpg", "p1", None),
        ("b.jpg", "7", "val"),
    ]
    report = EvalReport(outcomes=[QueryOutcome("c", None, rank=1, top_score=1.0)])
    assert report.summary()["per_split"] == {} and report.splits == []
