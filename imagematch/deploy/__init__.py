"""What the deployed app's containers run, written without Modal so tests drive it offline.

``modal_app.py`` is wiring only: its image, Volume, classes and schedules call these in one line
each, passing the Volume (as a :class:`VolumeSync`) and the spawns. Like the CLI, this package is a
front door: it may use :mod:`index_builder`; the core never imports it.
"""

from imagematch.deploy.builds import fan_out_executor, reindex
from imagematch.deploy.schedules import requeue_and_dispatch, sweep_and_record
from imagematch.deploy.volume import SharedVolume, VolumeSync
from imagematch.deploy.web import RemoteMatch, build_web_app, build_webhook_app
from imagematch.deploy.workers import (
    EmbedderCache,
    container_settings,
    embed_catalog_chunk,
    embed_each,
    fetch_weights,
    match_with_fresh_index,
    move_to_gpu,
    process_dispatched,
    require_shared_ledger,
    spawn_in_chunks,
)

__all__ = [
    "EmbedderCache",
    "RemoteMatch",
    "SharedVolume",
    "VolumeSync",
    "build_web_app",
    "build_webhook_app",
    "container_settings",
    "embed_catalog_chunk",
    "embed_each",
    "fan_out_executor",
    "fetch_weights",
    "match_with_fresh_index",
    "move_to_gpu",
    "process_dispatched",
    "reindex",
    "requeue_and_dispatch",
    "require_shared_ledger",
    "spawn_in_chunks",
    "sweep_and_record",
]
