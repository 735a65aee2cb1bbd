"""The deployed ``reindex``: one writer rebuilds the catalog index (or switches the model) while
the GPU workers embed what the cache lacks, each committing its chunk's shard to the Volume.

The Volume rules shape it (see :mod:`imagematch.deploy.volume`): it reloads before it opens the
embedding cache, then never reloads while that cache is open — shards are read as committed
(``read_committed``, ``Volume.read_file`` on Modal); it takes the publish lock and commits it
before building, so a second writer started anywhere sees the lock and gives up; chunks that fail
outright fail the build, and CURRENT keeps pointing at the last good snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from imagematch import operations
from imagematch.app import Services
from imagematch.config import Settings
from imagematch.deploy.volume import VolumeSync
from imagematch.dispatch import Dispatch
from imagematch.errors import TransientError
from imagematch.retention import purge_stored_photos
from index_builder.fanout import EmbedChunk, ShardedExecutor, build_shards

__all__ = ["MapChunks", "ReadCommitted", "fan_out_executor", "reindex"]

log = logging.getLogger(__name__)

# Runs chunks on the GPU workers (Modal: ``.map``); answers each chunk's id or its exception.
MapChunks = Callable[[list[EmbedChunk]], Iterable[str | BaseException]]
ReadCommitted = Callable[[Path], bytes | None]  # a file's committed bytes, None when absent


def fan_out_executor(
    settings: Settings,
    model: str,
    map_chunks: MapChunks,
    read_committed: ReadCommitted | None = None,
    *,
    chunk_size: int = 256,
) -> ShardedExecutor:
    """A build's missing images, embedded by ``model`` in chunks across the GPU workers, each
    writing its chunk's shard on the Volume, read back as committed."""
    shards = build_shards(settings.data_dir, model, read_committed)
    return ShardedExecutor(shards, map_chunks, chunk_size=chunk_size)


def reindex(
    settings: Settings,
    *,
    volume: VolumeSync,
    map_chunks: Callable[[str], MapChunks],
    read_committed: ReadCommitted | None = None,
    route: Callable[[Services], Dispatch] | None = None,
    catalog: str = "",
    model: str = "",
    chunk_size: int = 256,
    lock_seconds: float = 3 * 3600,
) -> dict[str, Any] | None:
    """Rebuild ``catalog`` (default ``IMAGEMATCH_CATALOG``) into a new snapshot, or with
    ``model`` build a candidate and promote it only if its check passes. ``map_chunks(model)``
    fans chunks out for that model; ``route(services)`` dispatches the catalog events a switch
    re-queues.
    Returns the summary, or ``None`` when no catalog is configured. Raises PublishBusyError when
    another writer holds the lock, ChunksFailedError when chunks failed outright (nothing is
    published), TransientError when the Volume cannot be reloaded first."""
    catalog = catalog or settings.catalog or ""
    if not catalog:
        log.warning("reindex skipped: IMAGEMATCH_CATALOG is not set")
        return None
    if not volume.reload():  # before the cache is opened: it is read as the last build left it
        raise TransientError("could not reload the Volume before the build; nothing was built")
    with operations.open_services(settings, embedder=model) as services:
        if route is not None:
            services.add_dispatcher(route(services))
        executor = fan_out_executor(
            settings, services.model, map_chunks(services.model), read_committed, chunk_size=chunk_size
        )
        log.info("retention: %s", purge_stored_photos(services).describe())  # thumbnails, uploads
        try:
            with services.snapshots.publishing(ttl_seconds=lock_seconds, wait_seconds=0):
                volume.commit()  # the lock, seen by any other writer that reloads
                summary = _build(services, catalog, executor, switching=bool(model))
        finally:
            volume.commit()  # the snapshot and the cache; or the lock's release after a failure
    _remove_shards(volume, executor)
    return summary


def _remove_shards(volume: VolumeSync, executor: ShardedExecutor) -> None:
    """The workers' shards are folded into the cache and the snapshot: remove them from the Volume
    (this container sees them only now, after a reload; its cache is closed by then)."""
    if volume.reload():
        executor.shards.clear()
        volume.commit()


def _build(services: Services, catalog: str, executor: ShardedExecutor, *, switching: bool) -> dict[str, Any]:
    if switching:
        return operations.switch_model(services, catalog, executor=executor).summary()
    return operations.rebuild(services, catalog, executor=executor).summary()
