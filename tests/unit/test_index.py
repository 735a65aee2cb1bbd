from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.index import CatalogChange, ChangeKind, IndexHandle, ProductIndex, SnapshotStore
from imagematch.models import Product, ProductScoring

EMB = "test-embedder@1"


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _index(scoring: ProductScoring = ProductScoring.MAX) -> ProductIndex:
    index = ProductIndex(EMB, 3, scoring=scoring)
    index.upsert_product(
        Product(id="A", name="Apple", category="fruit"),
        [("a0.jpg", "a" * 64), ("a1.jpg", "b" * 64)],
        np.stack([_unit(1, 0, 0), _unit(0.8, 0.6, 0)]),
    )
    index.upsert_product(
        Product(id="B", name="Bread", category="bakery"), [("b0.jpg", "c" * 64)], np.stack([_unit(0, 1, 0)])
    )
    index.upsert_product(
        Product(id="C", name="Cheese", category="dairy"), [("c0.jpg", "d" * 64)], np.stack([_unit(0, 0, 1)])
    )
    return index


def test_search_answers_per_product_with_the_best_image() -> None:
    [matches] = _index().search(_unit(0.7, 0.7, 0)[None], 5, embedder_id=EMB)
    assert [m.product_id for m in matches] == ["A", "B", "C"]  # A once, though two of its images hit
    assert matches[0].image_id == f"A/{'b' * 12}"  # its second image is the closer one
    assert matches[0].score == pytest.approx(
        float(_unit(0.7, 0.7, 0) @ _unit(0.8, 0.6, 0)), abs=1e-3
    )  # float16 storage
    assert matches[0].score >= matches[1].score >= matches[2].score


def test_centroid_scoring_ranks_by_the_mean_image_and_names_the_closest_image() -> None:
    index = _index(ProductScoring.CENTROID)
    centroid_a = _unit(*(_unit(1, 0, 0) + _unit(0.8, 0.6, 0)))
    [matches] = index.search(centroid_a[None], 5, embedder_id=EMB)
    assert matches[0].product_id == "A" and matches[0].score == pytest.approx(1.0, abs=1e-3)
    [matches] = index.search(_unit(0.75, 0.66, 0)[None], 1, embedder_id=EMB)
    assert matches[0].image_id == f"A/{'b' * 12}"


@pytest.mark.parametrize("scoring", list(ProductScoring))
def test_top_k_and_filter(scoring: ProductScoring) -> None:
    index = _index(scoring)
    [top1] = index.search(_unit(0, 0, 1)[None], 1, embedder_id=EMB)
    assert [m.product_id for m in top1] == ["C"]
    [fruit] = index.search(_unit(0, 0, 1)[None], 5, embedder_id=EMB, accept=lambda p: p.category == "fruit")
    assert [m.product_id for m in fruit] == ["A"]


def test_upsert_replaces_and_remove_drops_vectors() -> None:
    index = _index()
    index.upsert_product(
        Product(id="A", name="Apple v2"), [("new.jpg", "e" * 64)], np.stack([_unit(0, 0, 1)])
    )
    assert index.vector_count == 3
    [matches] = index.search(_unit(1, 0, 0)[None], 5, embedder_id=EMB)
    assert matches[0].name in {"Apple v2", "Bread", "Cheese"}
    assert index.remove_product("A") and not index.remove_product("A")
    [matches] = index.search(_unit(1, 0, 0)[None], 5, embedder_id=EMB)
    assert "A" not in {m.product_id for m in matches} and index.vector_count == 2


def test_search_refuses_vectors_of_another_embedder() -> None:
    with pytest.raises(EmbedderMismatchError):
        _index().search(_unit(1, 0, 0)[None], 5, embedder_id="other@1")


def test_snapshot_round_trip_and_pointer(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "index")
    with pytest.raises(IndexNotBuiltError):
        store.load(embedder_id=EMB)
    first = store.publish(_index())
    second_index = _index()
    second_index.remove_product("C")
    second = store.publish(second_index)
    assert (first, second) == ("v000001", "v000002")
    assert store.current_version() == "v000002"
    loaded = store.load(embedder_id=EMB)
    assert loaded.version == "v000002" and set(loaded.products) == {"A", "B"}
    [matches] = loaded.search(_unit(0.8, 0.6, 0)[None], 5, embedder_id=EMB)
    assert matches[0].product_id == "A" and matches[0].score == pytest.approx(1.0, abs=1e-3)
    assert set(store.load(embedder_id=EMB, version="v000001").products) == {"A", "B", "C"}
    assert not list((tmp_path / "index").glob(".staging-*"))


def test_a_snapshot_written_with_one_object_per_image_still_loads(tmp_path: Path) -> None:
    index = _index()
    index.write_to(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    columns = meta["images"]
    meta["images"] = [  # the layout before images were stored as columns
        {"vector_id": vid, "product_id": pid, "image_id": f"{pid}/{sha[:12]}", "uri": uri, "sha256": sha}
        for vid, pid, uri, sha in zip(
            columns["vector_id"], columns["product_id"], columns["uri"], columns["sha256"], strict=True
        )
    ]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    loaded = ProductIndex.read_from(tmp_path)
    assert loaded.images == index.images and loaded.products == index.products
    assert (
        ProductIndex.read_from(tmp_path).search(_unit(1, 0, 0)[None], 1, embedder_id=EMB)[0][0].product_id
        == "A"
    )


def test_snapshot_refuses_another_embedder(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "index")
    store.publish(_index())
    with pytest.raises(EmbedderMismatchError, match="rebuild"):
        store.load(embedder_id="open_clip-ViT-B-32@x")


def test_old_snapshots_are_pruned(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "index", keep=2)
    for _ in range(4):
        store.publish(_index())
    assert store.versions() == ["v000003", "v000004"]


def test_a_rebuilt_snapshot_continues_the_event_order_of_the_one_it_replaces(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "index")
    live = _index()
    at = datetime(2026, 11, 30, tzinfo=UTC)
    assert live.apply(CatalogChange(7, ChangeKind.DELETE, "C", at))  # C deleted by event #7
    assert live.apply(CatalogChange(8, ChangeKind.DELETE, "B", at))  # B too, but the catalog lists it
    store.publish(live)
    store.changes(EMB).append(CatalogChange(9, ChangeKind.DELETE, "A", at))  # logged, not yet in a snapshot

    rebuilt = ProductIndex(EMB, 3)  # what a build from a catalog listing only B yields
    rebuilt.upsert_product(Product(id="B", name="Bread"), [], np.zeros((0, 3), np.float32))
    rebuilt.continue_event_order(store.event_order(EMB, folding={9}))
    rebuilt.applied_changes = {9}  # folded in: the log entry goes when this is published
    store.publish(rebuilt)
    assert store.changes(EMB).sequences() == []

    loaded = store.load(embedder_id=EMB)
    assert loaded.sequences == {"C": 7, "B": 8, "A": 9}
    assert set(loaded.deleted) == {"A", "C"}  # B is listed again: no tombstone
    upsert_c = CatalogChange(
        6, ChangeKind.UPSERT, "C", at, Product(id="C", name="Cheese"), (), _unit(0, 0, 1)[None]
    )
    assert loaded.is_stale("C", 6) and not loaded.apply(upsert_c)
    assert "C" not in loaded.products


def test_handle_hot_reloads_when_the_pointer_moves(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "index")
    store.publish(_index())
    ticks = [0.0]
    handle = IndexHandle(store, EMB, check_seconds=5, monotonic=lambda: ticks[0])
    assert handle.get().version == "v000001"
    store.publish(_index())
    assert handle.get().version == "v000001"  # not checked again yet
    ticks[0] = 6.0
    assert handle.get().version == "v000002"


def test_a_large_index_turns_ivf_and_keeps_upserts_removals_and_snapshots(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    index = ProductIndex(EMB, 16, scoring=ProductScoring.CENTROID)
    for n in range(400):
        vectors = rng.normal(size=(2, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.upsert_product(
            Product(id=f"P{n}"), [(f"{n}-a", f"{n:064d}"), (f"{n}-b", f"{n + 1:064d}")], vectors
        )
    index.size_vector_indexes(flat_max_floats=1000)  # 800 x 16 floats: beyond the (tiny) limit
    assert index.stats(datetime.now(UTC))["vector_index"]["images"]["kind"] == "ivf"
    target = index._product_vectors.reconstruct(index._product_keys["P7"])
    [matches] = index.search(target[None], 5, embedder_id=EMB)
    assert matches[0].product_id == "P7" and matches[0].image_id.startswith("P7/")
    assert index.remove_product("P7")
    index.upsert_product(Product(id="P-new"), [("new", "e" * 64)], target[None])
    [matches] = index.search(target[None], 5, embedder_id=EMB)
    assert matches[0].product_id == "P-new" and "P7" not in {m.product_id for m in matches}
    store = SnapshotStore(tmp_path / "index")
    store.publish(index)
    [matches] = store.load(embedder_id=EMB).search(target[None], 1, embedder_id=EMB)
    assert matches[0].product_id == "P-new"
