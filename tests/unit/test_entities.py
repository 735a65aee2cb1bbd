"""Entity aggregation (best score over photos, support, evidence) and stored photo vectors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from imagematch.entities import EntityRef, aggregate_matches
from imagematch.models import Match
from imagematch.photo_vectors import PhotoVectorStore
from imagematch.rematch import version_order


def _m(product_id: str, score: float) -> Match:
    return Match(product_id=product_id, name=product_id, score=score, image_id=f"{product_id}/0")


def test_best_score_over_photos_with_support_and_evidence() -> None:
    rows = aggregate_matches(
        {
            11: [_m("mug", 0.6), _m("lamp", 0.5)],
            12: [_m("lamp", 0.9), _m("mug", 0.55), _m("box", 0.2)],
        },
        top_k=2,
        index_version="v000002+5",
    )
    assert [(r.product_id, r.rank, r.score, r.photos) for r in rows] == [
        ("lamp", 1, 0.9, 2),
        ("mug", 2, 0.6, 2),
    ]
    assert [(e.job_id, e.score, e.rank) for e in rows[0].evidence] == [(11, 0.5, 2), (12, 0.9, 1)]
    assert rows[0].index_version == "v000002+5"


def test_ties_go_to_the_product_more_photos_support() -> None:
    rows = aggregate_matches(
        {1: [_m("a", 0.7)], 2: [_m("b", 0.7), _m("a", 0.1)]}, top_k=5, index_version="v1"
    )
    assert [r.product_id for r in rows] == ["a", "b"]


def test_entity_names_are_one_path_segment() -> None:
    assert str(EntityRef.parse("listing/abc-1")) == "listing/abc-1"
    for bad in ("ticket", "Ticket/1", "ticket/a/b", "ticket/"):
        with pytest.raises(ValueError):
            EntityRef.parse(bad)


def test_index_versions_order_by_snapshot_then_live_change() -> None:
    assert version_order("v000002+17") < version_order("v000002+18") < version_order("v000003")
    assert version_order(None) < version_order("v000001")


def test_stored_vectors_are_kept_per_embedder_and_pruned_after_retention(tmp_path: Path) -> None:
    store = PhotoVectorStore(tmp_path)
    digest = "ab" * 32
    store.put("efficientnet:lite0", digest, np.arange(4, dtype=np.float32))
    store.put("tiny-rgb8x8@1", digest, np.ones(3, dtype=np.float32))
    assert np.array_equal(store.get("efficientnet:lite0", digest), np.arange(4, dtype=np.float32))
    assert store.get("other", digest) is None
    old = next(tmp_path.glob("*/ab/*.f32"))
    os.utime(old, (time.time() - 100 * 86_400,) * 2)
    assert store.prune(older_than_days=90) == 1
    assert sum(store.get(e, digest) is not None for e in ("efficientnet:lite0", "tiny-rgb8x8@1")) == 1
