"""What the deployed containers run, without Modal: settings, the GPU move, the job and match
methods, a build chunk, a batch of image vectors and the weights download. ``modal_app.py`` calls
these in one line each, passing the Volume (wrapped in a :class:`VolumeSync`) and the spawns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imagematch.app import Services
from imagematch.config import Settings
from imagematch.deploy.volume import VolumeSync
from imagematch.dispatch import Dispatch
from imagematch.embedder import Embedder
from imagematch.error_reporting import observe_process
from imagematch.errors import ImageMatchError, TransientError
from imagematch.fetch import read_uri
from imagematch.images import ImageLimits
from imagematch.models import MatchRequest
from imagematch.worker import Worker
from index_builder.fanout import EmbedChunk, build_shards, embed_chunk

__all__ = [
    "EmbedderCache",
    "container_settings",
    "embed_catalog_chunk",
    "embed_each",
    "fetch_weights",
    "match_with_fresh_index",
    "move_to_gpu",
    "process_dispatched",
    "require_shared_ledger",
    "spawn_in_chunks",
]

log = logging.getLogger(__name__)


def require_shared_ledger(settings: Settings) -> None:
    """Refuse a ledger that several containers cannot share safely (SQLite or in-memory).

    Raises ``RuntimeError`` naming the variable to set."""
    url = settings.resolved_database_url()
    if settings.supabase_url or url.startswith(("postgresql://", "postgres://")):
        return
    raise RuntimeError(
        f"the ledger on Modal must be Postgres or Supabase, not {url.split('://')[0]}: set "
        "IMAGEMATCH_DATABASE_URL=postgresql://… (or IMAGEMATCH_SUPABASE_URL and "
        "IMAGEMATCH_SUPABASE_SERVICE_KEY) in the `imagematch` Modal Secret"
    )


def container_settings(*, on_modal: bool, model: str = "") -> Settings:
    """Settings from the environment (image env + Secret); on Modal, also check the ledger. Sets up
    logging (JSON with no TTY) and error reports when ``SENTRY_DSN`` is set. ``model``: the spec of
    the model this container loaded (the served snapshot's), instead of ``IMAGEMATCH_MODEL``."""
    settings = Settings(model=model) if model else Settings()
    if on_modal:
        require_shared_ledger(settings)
    observe_process(settings)
    return settings


def move_to_gpu(embedder: object, *, cuda_available: bool) -> None:
    """Move a torch embedder to the GPU. Raises RuntimeError when there is none: a GPU class
    silently embedding on CPU would answer every request minutes late. (The tiny test embedder
    has no ``.to`` and stays where it is.)"""
    to = getattr(embedder, "to", None)
    if to is None:
        return
    if not cuda_available:
        raise RuntimeError("a GPU was requested but CUDA is not available in this container")
    to("cuda")


class EmbedderCache:
    """The served embedder, plus others loaded on demand (a model switch's build embeds with the
    new model in the same GPU containers)."""

    def __init__(self, model: str, embedder: Embedder, load: Callable[[str], Embedder]) -> None:
        self.model = model
        self._loaded = {model: embedder}
        self._load = load

    def get(self, model: str = "") -> Embedder:
        model = model or self.model
        if model not in self._loaded:
            self._loaded[model] = self._load(model)
        return self._loaded[model]


def spawn_in_chunks(spawn: Callable[[list[int]], object], chunk: int) -> Dispatch:
    """A dispatch that hands ``spawn`` the ids ``chunk`` at a time (a backlog spreads over
    several containers)."""

    def dispatch(job_ids: list[int]) -> None:
        for start in range(0, len(job_ids), chunk):
            spawn(job_ids[start : start + chunk])

    return dispatch


def process_dispatched(
    services: Services, worker: Worker, job_ids: list[int], volume: VolumeSync
) -> list[str | None]:
    """Claim and process the jobs in batches (one claim, one forward pass and one outcome round
    trip per ``IMAGEMATCH_BATCH`` ids); each job's status, or ``None`` when it was not claimable
    (done, taken by another worker, not due). A Volume that cannot be reloaded or committed now is
    logged and retried on the next call: the jobs still run."""
    volume.reload()  # uploads and snapshots committed since this container last looked
    with contextlib.suppress(ImageMatchError):  # no index yet: photo jobs fail and are retried
        services.index.refresh()
    statuses = worker.process_job_ids(job_ids)  # IMAGEMATCH_BATCH at a time, one forward pass each
    volume.commit()  # catalog events write change-log files other containers must see
    return [status.value if status else None for status in statuses]


def match_with_fresh_index(
    services: Services,
    volume: VolumeSync,
    image: bytes,
    request: dict[str, Any] | None,
    *,
    reload_every: float,
) -> dict[str, Any]:
    """``POST /v1/match`` on the GPU class: reload the Volume at most every ``reload_every``
    seconds (so a container that only matches still follows CURRENT), then match the bytes."""
    before = volume.reloads
    volume.reload(max_age=reload_every)
    if volume.reloads != before:  # CURRENT may have moved: look now, not at the next check
        with contextlib.suppress(ImageMatchError):
            services.index.refresh()
    wanted = MatchRequest.model_validate(request or {})
    return services.match_photo(image, wanted).model_dump(mode="json")


def embed_catalog_chunk(
    services: Services, embedder: Embedder, volume: VolumeSync, chunk: dict[str, Any], model: str
) -> str:
    """Embed one chunk of a build's images with ``embedder`` (of ``model``), write its shard on
    the Volume and commit it; returns the chunk's id. Raises TransientError when the shard could
    not be committed (the build then retries the chunk)."""
    volume.reload()  # catalog files uploaded to the Volume
    settings = services.settings
    result = embed_chunk(
        EmbedChunk.from_json(chunk),
        embedder=embedder,
        read_bytes=lambda uri: read_uri(uri, services.fetcher),
        limits=services.limits,
        views=settings.catalog_views,
        images_per_batch=max(1, settings.batch_size // 4),
    )
    build_shards(settings.data_dir, model).write(result)
    if not volume.commit():
        raise TransientError(f"chunk {result.chunk_id}: its shard could not be committed")
    return result.chunk_id


def embed_each(embedder: Embedder, limits: ImageLimits, images: Sequence[bytes]) -> list[list[float]]:
    """One vector per image, in order; an image that does not decode gets an empty vector instead
    of an error, which would fail every other caller's input in the same batch."""
    decoded, usable = [], []
    for data in images:
        try:
            decoded.append(limits.decode(data))
            usable.append(True)
        except ImageMatchError:
            usable.append(False)
    vectors = iter(embedder.embed(decoded)) if decoded else iter(())
    return [next(vectors).tolist() if ok else [] for ok in usable]


def fetch_weights(model: str, cache_dir: Path) -> str:
    """Download ``model``'s weights into ``cache_dir`` (OpenCLIP only: the other models ship as
    packages); returns what was done, for the operator."""
    family, _, spec = model.partition(":")
    if family != "open_clip":
        return f"{model} needs no downloaded weights"
    import open_clip  # only the weights function has hub access and needs it

    from imagematch.embedder.open_clip import parse_open_clip_spec

    arch, pretrained = parse_open_clip_spec(spec)
    open_clip.create_model_and_transforms(arch, pretrained=pretrained, cache_dir=str(cache_dir))
    return f"cached {arch}/{pretrained} in {cache_dir}"
