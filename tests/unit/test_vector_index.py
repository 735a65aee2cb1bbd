"""Index types by size: both kinds take external ids, remove and re-add, survive a round trip."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from imagematch.vector_index import (
    exact_top_k,
    get_nprobe,
    index_description,
    index_kind_for,
    ivf_nlist,
    make_vector_index,
    probe_queries,
    recall_at_k,
    resized_vector_index,
    set_nprobe,
    stored_vectors,
    tune_nprobe,
)

DIM = 32
N = 4000


def _unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(vectors)
    return vectors


@pytest.fixture(params=["flat", "ivf"])
def filled(request: pytest.FixtureRequest) -> tuple[faiss.Index, np.ndarray, np.ndarray]:
    vectors, ids = _unit_vectors(N), np.arange(10_000, 10_000 + N, dtype=np.int64)
    limit = N * DIM if request.param == "flat" else N * DIM - 1
    index = make_vector_index(DIM, N, training_vectors=vectors, flat_max_floats=limit)
    assert index_description(index)["kind"] == request.param
    assert index_description(index)["storage"] == "float16"
    index.add_with_ids(vectors, ids)
    set_nprobe(index, 1_000_000)  # exhaustive: these tests are about ids, not recall
    return index, vectors, ids


def _top1(index: faiss.Index, queries: np.ndarray) -> list[int]:
    return [int(i) for i in index.search(queries, 1)[1][:, 0]]


def test_the_kind_follows_the_scan_size() -> None:
    assert index_kind_for(512, 48_000) == "flat" and index_kind_for(512, 50_000) == "ivf"
    assert index_kind_for(1792, 13_000) == "flat" and index_kind_for(1792, 15_000) == "ivf"
    assert ivf_nlist(200_000) == 1789 and ivf_nlist(1000) == 25 and ivf_nlist(10) == 1
    with pytest.raises(ValueError, match="training_vectors"):
        make_vector_index(512, 100_000)


def test_removed_vectors_are_gone_and_the_rest_keep_their_ids(
    filled: tuple[faiss.Index, np.ndarray, np.ndarray],
) -> None:
    index, vectors, ids = filled
    removed = ids[100:300]
    assert index.remove_ids(removed) == 200 and index.ntotal == N - 200
    assert _top1(index, vectors[300:320]) == ids[300:320].tolist()
    assert not set(index.search(vectors[100:300], 5)[1].ravel().tolist()) & set(removed.tolist())
    np.testing.assert_allclose(index.reconstruct(int(ids[500])), vectors[500], atol=1e-3)  # float16

    index.add_with_ids(vectors[100:300], removed)  # re-add under the same ids
    assert index.ntotal == N and _top1(index, vectors[100:120]) == ids[100:120].tolist()


def test_a_round_trip_keeps_nprobe_and_removal(
    filled: tuple[faiss.Index, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    index, vectors, ids = filled
    set_nprobe(index, 3)
    faiss.write_index(index, str(tmp_path / "vectors.faiss"))
    loaded = faiss.read_index(str(tmp_path / "vectors.faiss"))
    assert index_description(loaded) == index_description(index)
    assert get_nprobe(loaded) == (3 if index_description(index)["kind"] == "ivf" else None)
    loaded.remove_ids(ids[:10])
    set_nprobe(loaded, 1_000_000)
    assert loaded.ntotal == N - 10 and _top1(loaded, vectors[10:20]) == ids[10:20].tolist()


def test_tuned_nprobe_is_the_smallest_that_reaches_the_target() -> None:
    vectors, ids = _unit_vectors(N, seed=1), np.arange(N, dtype=np.int64) * 3
    index = make_vector_index(DIM, N, training_vectors=vectors, flat_max_floats=0)
    index.add_with_ids(vectors, ids)
    choice = tune_nprobe(index, vectors, ids)
    assert choice.recall >= 0.98 and get_nprobe(index) == choice.nprobe
    assert all(recall < 0.98 for nprobe, recall in choice.tried.items() if nprobe < (choice.nprobe or 0))
    description = index_description(index)
    assert description["nprobe"] == choice.nprobe and description["nlist"] == ivf_nlist(N)

    flat = make_vector_index(DIM, 10)
    assert tune_nprobe(flat, vectors[:10], ids[:10]).nprobe is None


def test_recall_counts_shared_ids() -> None:
    exact = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    found = np.array([[5, 4, 3, 2, 99], [6, 7, 8, 9, 10]])
    assert recall_at_k(found, exact, 5) == 0.9
    queries = probe_queries(_unit_vectors(50), count=10)
    assert queries.shape == (10, DIM) and np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-5)


def test_a_build_turns_an_older_float32_index_into_float16_with_the_same_ids() -> None:
    vectors, ids = _unit_vectors(500, seed=2), np.arange(500, dtype=np.int64) * 7 + 3
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))  # what snapshots held before float16
    old.add_with_ids(vectors, ids)
    wanted = ids[::-1].tolist()  # any order: rows come back in the order asked for
    np.testing.assert_allclose(stored_vectors(old, wanted), vectors[::-1], atol=1e-6)

    resized = resized_vector_index(old, wanted, DIM)
    assert index_description(resized)["storage"] == "float16" and resized.ntotal == 500
    assert _top1(resized, vectors[:20]) == ids[:20].tolist()
    np.testing.assert_allclose(stored_vectors(resized, [int(ids[9])]), vectors[9:10], atol=1e-3)
    assert resized_vector_index(resized, wanted, DIM) is resized  # already the right type: kept


def test_tuning_can_use_exact_answers_computed_elsewhere() -> None:
    vectors, ids = _unit_vectors(N, seed=4), np.arange(N, dtype=np.int64)
    index = make_vector_index(DIM, N, training_vectors=vectors, flat_max_floats=0)
    index.add_with_ids(vectors, ids)
    queries = probe_queries(vectors)
    exact = exact_top_k(vectors, ids, queries, 5)
    empty = np.zeros((0, DIM), np.float32)  # not read when the exact answers are given
    choice = tune_nprobe(index, empty, ids[:0], queries=queries, exact=exact)
    assert choice == tune_nprobe(index, vectors, ids, queries=queries)
