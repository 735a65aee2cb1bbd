"""imagematch on Modal — wiring only: what runs is in ``imagematch.deploy`` (tested without Modal).

    modal deploy modal_app.py                          # API, webhooks, workers, sweep, nightly reindex
    modal run modal_app.py::download_weights           # once: cache the model's weights on the Volume
    modal run modal_ops.py --rebuild                   # operator commands: see modal_ops.py

``web`` serves the API without a model (``/v1/match`` is answered by ``EmbeddingWorker``) and
dispatches each job by what its kind needs: ``EmbeddingWorker`` (GPU) or ``CpuWorker``. ``reindex``
(nightly, CPU) fans the images it lacks out to ``CatalogEmbedder`` (GPU, its own cap: a build never
starves ``/v1/match``). The ledger is Postgres/Supabase, never SQLite on the Volume. The Volume holds
files with one writer each (snapshots and the embedding cache under the publish lock, weights,
content-addressed uploads, one change-log file per event); every reload and commit goes through
``VolumeSync``: one at a time per container, a failure logged and retried, never a failed job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import modal

MINUTES = 60  # seconds
HOURS = 60 * MINUTES

APP_NAME = "imagematch"
REQUIREMENTS = Path(__file__).parent / "requirements.lock"  # the one set of pins (make install too)

# The production model: OpenCLIP ViT-B/16 trained on DataComp-XL. The pretrained tag names one fixed
# weights release in open_clip_torch==3.3.0's table; changing it means rebuilding the index.
OPENCLIP_ARCH = "ViT-B-16"
OPENCLIP_PRETRAINED = "datacomp_xl_s13b_b90k"
MODEL = f"open_clip:{OPENCLIP_ARCH}/{OPENCLIP_PRETRAINED}"

DATA_DIR = "/data"
MODEL_CACHE_DIR = f"{DATA_DIR}/models"
# Package data (the ledger's .sql files, py.typed) ships with the code, not only the .py files.
SOURCE_IGNORE = ["**/__pycache__/**", "**/*.pyc"]

image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(requirements=[str(REQUIREMENTS)])
    .env(
        {
            "IMAGEMATCH_DATA_DIR": DATA_DIR,
            "IMAGEMATCH_MODEL_CACHE_DIR": MODEL_CACHE_DIR,
            "IMAGEMATCH_MODEL": MODEL,
            "IMAGEMATCH_BATCH_SIZE": "32",
            "IMAGEMATCH_METRICS_VIA_LEDGER_SECONDS": "30",  # each container's metrics summed in the ledger
            "IMAGEMATCH_BATCH": "16",  # jobs per forward pass: the model is on a GPU here
            "HF_HUB_OFFLINE": "1",  # weights from the Volume only (download_weights aside): fail loudly
        }
    )
    .add_local_python_source("imagematch", "index_builder", ignore=SOURCE_IGNORE)
)

with image.imports():
    import torch
    from fastapi import FastAPI

    from imagematch import deploy
    from imagematch.app import Services, build_services, image_limits, serving_model
    from imagematch.config import Settings
    from imagematch.dispatch import Dispatch, RoutedDispatch
    from imagematch.embedder import Embedder, load_embedder
    from imagematch.models import MatchRequest, MatchResult

data_volume = modal.Volume.from_name("imagematch-data", create_if_missing=True)
volumes = {DATA_DIR: data_volume}
# IMAGEMATCH_DATABASE_URL (or Supabase), the Zendesk and webhook secrets, IMAGEMATCH_CATALOG.
secrets = [modal.Secret.from_name("imagematch")]
# Set once: every function and class runs this image with this Secret; decorators say what differs.
app = modal.App(APP_NAME, image=image, secrets=secrets)

GPU = "L4"
EMBED_MAX_BATCH_SIZE = 32
EMBED_WAIT_MS = 50
DISPATCH_CHUNK = 16  # jobs per spawned call: a backlog spreads over several containers
GPU_WORKERS = 10  # max EmbeddingWorker containers (matches and photo jobs)
BUILD_GPU_WORKERS = 6  # max CatalogEmbedder containers: how wide a rebuild fans out
BUILD_CHUNK_IMAGES = 256  # catalog images per embedding call of a rebuild (14 views each)
SWEEP_SCHEDULE = "*/5 * * * *"  # every 5 minutes
REINDEX_SCHEDULE = "0 3 * * *"  # nightly, 03:00 UTC
VOLUME_RELOAD_SECONDS = 60  # how stale a web or match container's view of the Volume may get


# ## The seams (tests replace these two with a Volume stand-in)


def container_volume() -> Any:
    """The mounted Volume, or ``None`` outside a container (``.local()``: nothing to sync)."""
    return None if modal.is_local() else data_volume


def read_committed(path: Path) -> bytes | None:
    """A file's bytes as committed to the Volume, without a reload (``Volume.read_file``)."""
    if modal.is_local():
        return path.read_bytes() if path.exists() else None
    try:
        return b"".join(data_volume.read_file(str(path.relative_to(DATA_DIR))))
    except FileNotFoundError:
        return None


# ## Wiring helpers: settings, routing, remote calls, model loading


def settings(model: str = "") -> Settings:
    return deploy.container_settings(on_modal=not modal.is_local(), model=model)


def route(services: Services, volume: deploy.VolumeSync | None = None) -> Dispatch:
    """Spawn each job on the class its kind needs; ``volume``: commit this container's uploads first."""
    return RoutedDispatch(
        services.ledger,
        services.kinds,
        to_embedder=deploy.spawn_in_chunks(EmbeddingWorker().process_jobs.spawn, DISPATCH_CHUNK),
        to_cpu=deploy.spawn_in_chunks(CpuWorker().process_jobs.spawn, DISPATCH_CHUNK),
        before=volume.commit if volume else None,
    )


def match_on_gpu(data: bytes, request: MatchRequest) -> MatchResult:
    return MatchResult.model_validate(EmbeddingWorker().match.remote(data, request.model_dump()))


def map_chunks_on_gpus(model: str) -> deploy.builds.MapChunks:
    def map_chunks(chunks: list[Any]) -> Any:
        jobs = [chunk.to_json() for chunk in chunks]
        method = CatalogEmbedder().embed_catalog_chunk
        return method.map(jobs, kwargs={"model": model}, order_outputs=False, return_exceptions=True)

    return map_chunks


def load_on_cpu(model: str) -> Embedder:
    config = Settings()
    return load_embedder(model, device="cpu", batch_size=config.batch_size, cache_dir=config.model_cache_dir)


def load_on_gpu(model: str) -> Embedder:
    embedder = load_on_cpu(model)
    deploy.move_to_gpu(embedder, cuda_available=torch.cuda.is_available())
    return embedder


# ## Model weights


@app.function(volumes=volumes, env={"HF_HUB_OFFLINE": "0"}, timeout=30 * MINUTES)  # may reach the hub
def download_weights(model: str = "") -> None:
    """Cache ``model``'s weights (default: the configured one) on the Volume."""
    print(deploy.fetch_weights(model or Settings().model, Settings().model_cache_dir))
    deploy.VolumeSync(container_volume()).commit()


# ## GPU classes: weights read before the memory snapshot, moved to the GPU after the restore


class ModelOnGpu:
    @modal.enter(snap=True)
    def load_weights(self) -> None:
        self.model = serving_model(Settings())  # the served snapshot's model, if it names one
        self.embedder = load_on_cpu(self.model)
        self.limits = image_limits(Settings())

    @modal.enter(snap=False)
    def use_gpu(self) -> None:
        # A container restored from an older memory snapshot may hold a switched-from model.
        if (wanted := serving_model(Settings())) != self.model:
            self.model, self.embedder = wanted, load_on_cpu(wanted)
        deploy.move_to_gpu(self.embedder, cuda_available=torch.cuda.is_available())
        self.volume = deploy.VolumeSync(container_volume())


gpu_class = {"gpu": GPU, "volumes": volumes, "enable_memory_snapshot": True, "scaledown_window": 5 * MINUTES}


@app.cls(**gpu_class, timeout=10 * MINUTES, max_containers=GPU_WORKERS)
class EmbeddingWorker(ModelOnGpu):
    """The model and the index on a GPU: answers ``/v1/match`` and runs the job kinds that embed."""

    @modal.enter(snap=False)
    def connect(self) -> None:  # after the restore: sockets and worker ids are per container
        self.services = build_services(settings(self.model), embedder=self.embedder)
        self.services.add_dispatcher(route(self.services))  # e.g. a Zendesk note job
        self.worker = self.services.make_worker()

    @modal.method()
    def match(self, image: bytes, request: dict[str, Any] | None = None) -> dict[str, Any]:
        return deploy.match_with_fresh_index(
            self.services, self.volume, image, request, reload_every=VOLUME_RELOAD_SECONDS
        )

    @modal.method()
    def process_jobs(self, job_ids: list[int]) -> list[str | None]:
        return deploy.process_dispatched(self.services, self.worker, job_ids, self.volume)


@app.cls(**gpu_class, timeout=30 * MINUTES, max_containers=BUILD_GPU_WORKERS)
class CatalogEmbedder(ModelOnGpu):
    """A rebuild's chunks of catalog images (its own cap: a build never takes the match GPUs)."""

    @modal.enter(snap=False)
    def connect(self) -> None:
        self.services = build_services(settings(self.model), embedder=self.embedder)
        self.embedders = deploy.EmbedderCache(self.model, self.embedder, load_on_gpu)

    @modal.method()
    def embed_catalog_chunk(self, chunk: dict[str, Any], model: str = "") -> str:
        model = model or self.model
        return deploy.embed_catalog_chunk(self.services, self.embedders.get(model), self.volume, chunk, model)


@app.cls(volumes=volumes, enable_memory_snapshot=True, scaledown_window=2 * MINUTES, timeout=10 * MINUTES)
@modal.concurrent(max_inputs=8)  # mostly waiting on Zendesk's API
class CpuWorker:
    """Runs the job kinds that need no model (ticket scans, notes) on CPU, without loading it."""

    @modal.enter(snap=False)
    def connect(self) -> None:
        self.volume = deploy.VolumeSync(container_volume())  # one lock for the 8 inputs' syncs
        self.services = build_services(settings(), embedder=False)
        self.services.add_dispatcher(route(self.services))  # a ticket's attachments
        self.worker = self.services.make_worker()

    @modal.method()
    def process_jobs(self, job_ids: list[int]) -> list[str | None]:
        return deploy.process_dispatched(self.services, self.worker, job_ids, self.volume)


@app.cls(**gpu_class, max_containers=10)
class ImageEmbedder(ModelOnGpu):
    """Image vectors for other callers, batched on the GPU (its own class: Modal allows no other
    method beside a batched one). ``modal.Cls.from_name("imagematch", "ImageEmbedder")().embed``."""

    @modal.batched(max_batch_size=EMBED_MAX_BATCH_SIZE, wait_ms=EMBED_WAIT_MS)
    def embed(self, images: list[bytes]) -> list[list[float]]:
        return deploy.embed_each(self.embedder, self.limits, images)


# ## HTTP API and webhooks (memory snapshots capture the imports: torch alone is >20k file reads)


@app.function(volumes=volumes, enable_memory_snapshot=True, scaledown_window=5 * MINUTES)
@modal.concurrent(max_inputs=32)
@modal.asgi_app(requires_proxy_auth=True)  # Modal's proxy auth in front of the API's own token
def web() -> FastAPI:
    volume = deploy.VolumeSync(container_volume())
    volume.keep_fresh(VOLUME_RELOAD_SECONDS)  # new snapshots and uploads; failed commits retried
    return deploy.build_web_app(settings(), route=lambda s: route(s, volume), match=match_on_gpu)


# Zendesk cannot send Modal's proxy-auth headers: this app has only routes that verify the sender's
# signature first (and /healthz). CPU only, no Volume, no model: it persists a job and dispatches it.
@app.function(enable_memory_snapshot=True, scaledown_window=5 * MINUTES)
@modal.concurrent(max_inputs=32)
@modal.asgi_app()
def webhooks() -> FastAPI:
    return deploy.build_webhook_app(settings(), route=route)


# ## Schedules and operator functions (called by modal_ops.py on the deployed app)


@app.function(volumes=volumes, schedule=modal.Cron(SWEEP_SCHEDULE), enable_memory_snapshot=True)
def sweep() -> dict[str, Any]:
    """Re-queue due retries and expired leases; dispatch pending jobs a lost dispatch missed."""
    return deploy.sweep_and_record(settings(), deploy.VolumeSync(container_volume()), route)


@app.function(
    volumes=volumes,
    schedule=modal.Cron(REINDEX_SCHEDULE),
    timeout=2 * HOURS,
    memory=8192,  # the model on CPU (its id and size), the catalog's vectors, the whitening fit
    max_containers=1,  # one snapshot writer (the publish lock covers writers started elsewhere)
)
def reindex(catalog: str = "", model: str = "") -> dict[str, Any] | None:
    """Rebuild ``catalog`` (default ``IMAGEMATCH_CATALOG``) into a new snapshot; with
    ``model``, build a candidate of that model and promote it only if its check passes."""
    return deploy.reindex(
        settings(),
        volume=deploy.VolumeSync(container_volume()),
        map_chunks=map_chunks_on_gpus,
        read_committed=read_committed,
        route=route,
        catalog=catalog,
        model=model,
        chunk_size=BUILD_CHUNK_IMAGES,
    )


@app.function(timeout=30 * MINUTES)
def requeue(
    scope: str = "missing", source: str = "", since: str = "", limit: int = 0, dry_run: bool = False
) -> dict[str, Any]:
    """Re-queue the jobs with no successful prediction and dispatch them (``imagematch requeue``)."""
    options = {"scope": scope, "source": source, "since": since, "limit": limit, "dry_run": dry_run}
    return deploy.requeue_and_dispatch(settings(), route, **options)
