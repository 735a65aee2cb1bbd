"""Fan-out embedding for builds: chunks run anywhere, in any order, some twice, some failing once —
the snapshot is the same as a local build's. And the cache keeps only what the recipe needs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from imagematch.app import Services
from imagematch.index import ProductIndex, SnapshotStore
from index_builder import rebuild_catalog_index
from index_builder.cache import EmbeddingCache, fit_sample_level, in_fit_sample
from index_builder.catalog import read_uri
from index_builder.fanout import ChunkResult, ChunksFailedError, EmbedChunk, embed_chunk


class ShuffledFlakyExecutor:
    """Stands in for Modal's ``.map`` over GPU containers: answers chunks last-first, delivers one
    result twice, and loses one chunk on its first round (a preempted container)."""

    chunk_size = 2

    def __init__(self, services: Services) -> None:
        self.services = services
        self.rounds: list[list[str]] = []

    def run(self, chunks: Sequence[EmbedChunk]) -> Iterator[ChunkResult]:
        self.rounds.append([c.chunk_id for c in chunks])
        first_round = len(self.rounds) == 1
        results = [
            embed_chunk(
                chunk,
                embedder=self.services.embedder,
                read_bytes=lambda uri: read_uri(uri, self.services.fetcher),
                limits=self.services.limits,
                views=self.services.settings.catalog_views,
            )
            for chunk in reversed(chunks)
        ]
        if first_round and len(results) > 1:
            results.pop()  # lost: the coordinator must retry it
        yield from results
        yield results[0]  # a duplicate delivery


def ranking(index: ProductIndex, queries: np.ndarray) -> list[list[tuple[str, float]]]:
    answers = index.search(queries, 4, embedder_id=index.embedder_id)
    return [[(m.product_id, round(m.score, 6)) for m in matches] for matches in answers]


def test_fanned_out_build_equals_the_local_build(
    services: Services, catalog_file: Path, tmp_path: Path
) -> None:
    local = SnapshotStore(tmp_path / "local")
    fanned = SnapshotStore(tmp_path / "fanned")
    services.settings.data_dir = tmp_path / "fresh-cache-local"  # each build starts from no cache
    local_index, local_report = rebuild_catalog_index(services, str(catalog_file), snapshots=local)
    executor = ShuffledFlakyExecutor(services)
    services.settings.data_dir = tmp_path / "fresh-cache-fanned"
    fanned_index, fanned_report = rebuild_catalog_index(
        services, str(catalog_file), snapshots=fanned, executor=executor
    )

    assert len(executor.rounds) == 2 and len(executor.rounds[1]) == 1  # the lost chunk, retried
    assert (fanned_report.embedded, fanned_report.failed_images) == (local_report.embedded, [])
    assert fanned_index.products == local_index.products
    assert local_index.projection.matrix is not None
    np.testing.assert_array_equal(fanned_index.projection.matrix, local_index.projection.matrix)
    probes = np.random.default_rng(0).standard_normal((6, services.embedder.dim)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    assert ranking(fanned_index, probes) == ranking(local_index, probes)


def test_a_build_whose_chunks_fail_outright_publishes_nothing(
    services: Services, catalog_file: Path, tmp_path: Path
) -> None:
    class Down:
        chunk_size = 4

        def run(self, chunks: Sequence[EmbedChunk]) -> Iterator[ChunkResult]:
            raise ConnectionError("no containers")
            yield  # pragma: no cover

    services.settings.data_dir = tmp_path / "fresh-cache"
    store = SnapshotStore(tmp_path / "s")
    with pytest.raises(ChunksFailedError, match=r"2 of 2 embedding chunks \(8 images\).*no containers"):
        rebuild_catalog_index(services, str(catalog_file), snapshots=store, executor=Down())
    assert store.current_version() is None and store.versions() == []  # nothing published


def test_the_cache_keeps_views_only_for_the_whitening_sample(tmp_path: Path) -> None:
    assert fit_sample_level(4096, 4096) == 0 and fit_sample_level(4097, 4096) == 1
    assert fit_sample_level(1_000_000, 4096) == 8  # ~3,900 of a million images keep their views
    digests = [f"{n:08x}" + "0" * 56 for n in range(64)]
    level = 2
    assert sum(in_fit_sample(d, level) for d in digests) == 16
    assert all(in_fit_sample(d, level) for d in digests if in_fit_sample(d, level + 1))  # nested

    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    views = {d: np.ones((14, 8), dtype=np.float32) for d in digests}
    cache.put_many("k", views, keep_views=lambda d: in_fit_sample(d, level))
    stored = cache.get_many("k", digests)
    assert sum(item.views is not None for item in stored.values()) == 16
    images, vector_bytes, view_bytes = cache.size("k")
    assert (images, vector_bytes, view_bytes) == (64, 64 * 8 * 2, 16 * 14 * 8 * 2)
    cache.close()


def test_sharded_executor_reads_back_what_workers_wrote_and_skips_finished_chunks(
    services: Services, catalog_file: Path, tmp_path: Path
) -> None:
    from index_builder.fanout import ChunkShards, ShardedExecutor

    shards = ChunkShards(tmp_path / "shards")
    embedded: list[str] = []

    def map_chunks(chunks: list[EmbedChunk]) -> Iterator[str | BaseException]:
        for chunk in chunks:  # each "container" embeds its chunk and writes the shard
            embedded.append(chunk.chunk_id)
            if chunk is chunks[0] and len(embedded) == 1:
                yield RuntimeError("container preempted")
                continue
            shards.write(
                embed_chunk(
                    EmbedChunk.from_json(chunk.to_json()),  # as it travels to the container
                    embedder=services.embedder,
                    read_bytes=lambda uri: read_uri(uri, services.fetcher),
                    limits=services.limits,
                    views=services.settings.catalog_views,
                )
            )
            yield chunk.chunk_id

    executor = ShardedExecutor(shards, map_chunks, chunk_size=3)
    services.settings.data_dir = tmp_path / "fresh-cache"
    _, report = rebuild_catalog_index(
        services, str(catalog_file), snapshots=SnapshotStore(tmp_path / "s"), executor=executor
    )
    assert report.embedded == 8 and report.failed_images == []
    assert len(embedded) == 4  # 3 chunks, the preempted one twice

    embedded.clear()  # a build that stopped after the workers finished finds their shards
    services.settings.data_dir = tmp_path / "another-fresh-cache"
    _, again = rebuild_catalog_index(
        services, str(catalog_file), snapshots=SnapshotStore(tmp_path / "t"), executor=executor
    )
    assert again.embedded == 8 and embedded == []
