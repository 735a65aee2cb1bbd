"""Embedding the images a build is missing, through an executor seam: in this process (the
batched loop), or spread over many containers (Modal ``.map`` over GPU workers in chunks).

The coordinator (:func:`embed_missing`) cuts the missing images into chunks with stable ids, hands
them to an :class:`EmbeddingExecutor`, and accepts results in any order and more than once (a
duplicate is ignored). A chunk that fails is retried, up to ``attempts`` rounds; images of a chunk
that never succeeded fail the build (:class:`ChunksFailedError`): nothing is published, and the
chunks that did finish are already in the cache for the next try. One writer — the build — fits
the whitening and publishes the snapshot, as a local build does, so the snapshot is the same
whichever executor embedded the images.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imagematch.embedder import Embedder, Vectors
from imagematch.errors import ImageMatchError
from imagematch.images import sha256_hex
from imagematch.models import CatalogViews
from imagematch.pipeline import ImageLimits
from imagematch.representation import embed_catalog_images

__all__ = [
    "ChunkResult",
    "ChunkShards",
    "ChunksFailedError",
    "EmbedChunk",
    "EmbeddingExecutor",
    "ImageTask",
    "LocalExecutor",
    "ShardedExecutor",
    "build_shards",
    "embed_chunk",
    "embed_missing",
    "make_chunks",
]

log = logging.getLogger(__name__)


class ChunksFailedError(ImageMatchError):
    """Chunks of a build's embedding failed outright (a lost worker, a Volume that could not be
    read): the build publishes nothing. ``reasons``: the last errors seen, for the operator."""

    def __init__(self, failed: int, total: int, images: int, reasons: list[str]) -> None:
        shown = "; ".join(dict.fromkeys(reasons)) or "no answer from the workers"
        super().__init__(
            f"{failed} of {total} embedding chunks ({images} images) failed after every retry: "
            f"{shown[:1000]}. Nothing was published; the served snapshot is unchanged."
        )
        self.failed = failed
        self.total = total
        self.reasons = reasons


@dataclass(frozen=True)
class ImageTask:
    """One catalog image to embed: where it is and the content hash the build read there."""

    product_id: str
    uri: str
    digest: str


@dataclass(frozen=True)
class EmbedChunk:
    """Images embedded together by one worker. ``chunk_id`` is derived from the digests, so the
    same images always form the same chunk (a retried or duplicated chunk is recognised)."""

    chunk_id: str
    tasks: tuple[ImageTask, ...]

    def to_json(self) -> dict[str, Any]:
        return {"chunk_id": self.chunk_id, "tasks": [[t.product_id, t.uri, t.digest] for t in self.tasks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbedChunk:
        return cls(str(data["chunk_id"]), tuple(ImageTask(*map(str, task)) for task in data["tasks"]))


@dataclass
class ChunkResult:
    """A chunk's outcome: the view vectors of each embedded image (by digest) and the images that
    could not be (by digest, with the reason)."""

    chunk_id: str
    views: dict[str, Vectors] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


class EmbeddingExecutor(Protocol):
    """Runs chunks of ``chunk_size`` images somewhere. Yields one result per chunk that succeeded,
    in any order, possibly more than once; a chunk that failed as a whole (a lost container, a
    timeout) yields nothing — the coordinator retries what is missing."""

    @property
    def chunk_size(self) -> int: ...

    def run(self, chunks: Sequence[EmbedChunk]) -> Iterable[ChunkResult]: ...


def make_chunks(tasks: Iterable[ImageTask], size: int) -> list[EmbedChunk]:
    """Unique images (by digest) in chunks of ``size``, in digest order (stable across runs)."""
    unique = sorted({task.digest: task for task in tasks}.values(), key=lambda t: t.digest)
    chunks = []
    for start in range(0, len(unique), size):
        part = tuple(unique[start : start + size])
        chunk_id = hashlib.sha256("".join(t.digest for t in part).encode()).hexdigest()[:16]
        chunks.append(EmbedChunk(chunk_id, part))
    return chunks


def embed_chunk(
    chunk: EmbedChunk,
    *,
    embedder: Embedder,
    read_bytes: Callable[[str], bytes],
    limits: ImageLimits,
    views: CatalogViews,
    images_per_batch: int = 4,
) -> ChunkResult:
    """Read, check, decode and embed a chunk's images (what any executor's worker runs). An image
    whose bytes changed since the build hashed them, or that cannot be read or decoded, is a
    failure of that image, not of the chunk."""
    result = ChunkResult(chunk.chunk_id)
    for start in range(0, len(chunk.tasks), images_per_batch):
        decoded, kept = [], []
        for task in chunk.tasks[start : start + images_per_batch]:
            try:
                data = read_bytes(task.uri)
                if sha256_hex(data) != task.digest:
                    raise ImageMatchError("the image changed while the index was being built")
                decoded.append(limits.decode(data))
                kept.append(task)
            except ImageMatchError as exc:
                result.failures[task.digest] = str(exc)
        for task, matrix in zip(kept, embed_catalog_images(embedder, decoded, views), strict=True):
            result.views[task.digest] = matrix
    return result


@dataclass
class LocalExecutor:
    """Embeds chunks one after another in this process (the default; what tests and small users run)."""

    embedder: Embedder
    read_bytes: Callable[[str], bytes]
    limits: ImageLimits
    views: CatalogViews
    images_per_batch: int = 4
    chunk_size: int = 64

    def run(self, chunks: Sequence[EmbedChunk]) -> Iterator[ChunkResult]:
        for chunk in chunks:
            yield embed_chunk(
                chunk,
                embedder=self.embedder,
                read_bytes=self.read_bytes,
                limits=self.limits,
                views=self.views,
                images_per_batch=self.images_per_batch,
            )


def embed_missing(
    tasks: Sequence[ImageTask],
    executor: EmbeddingExecutor,
    *,
    attempts: int = 3,
    on_result: Callable[[ChunkResult], None] | None = None,
) -> tuple[dict[str, Vectors], dict[str, str]]:
    """Embed ``tasks`` through ``executor``: ``(views by digest, failures by digest)``, where a
    failure is one image's (unreadable, not an image).

    ``on_result`` sees each chunk's result once, as it arrives (the build caches it at once, so a
    crash later loses no finished chunk). Raises :class:`ChunksFailedError` when chunks are still
    missing after ``attempts`` rounds."""
    chunks = make_chunks(tasks, executor.chunk_size)
    pending = {chunk.chunk_id: chunk for chunk in chunks}
    views: dict[str, Vectors] = {}
    failures: dict[str, str] = {}
    reasons: list[str] = []
    for round_number in range(1, attempts + 1):
        if not pending:
            break
        try:
            for result in executor.run(list(pending.values())):
                if pending.pop(result.chunk_id, None) is None:
                    continue  # a duplicate, or a chunk of no interest
                views.update(result.views)
                failures.update(result.failures)
                if on_result:
                    on_result(result)
        except Exception as exc:  # the executor itself broke mid-round: retry what is missing
            log.warning("embedding round %d stopped: %s", round_number, exc)
            reasons.append(f"{type(exc).__name__}: {exc}")
        reasons.extend(getattr(executor, "errors", ()))
        if pending:
            log.warning("round %d: %d chunks missing; retrying", round_number, len(pending))
    if pending:
        images = sum(len(chunk.tasks) for chunk in pending.values())
        raise ChunksFailedError(len(pending), len(chunks), images, reasons[-5:])
    return views, failures


class ChunkShards:
    """Chunk results as files (``<chunk id>.npz``) in a directory every worker can write (on
    Modal: the Volume), so a finished chunk survives the build that asked for it. Each file is
    written once, atomically; the build removes them after it publishes.

    ``read_committed`` reads a shard's bytes as the other workers committed them (on Modal:
    ``Volume.read_file``), ``None`` if absent; default: the local file. Reading that way needs no
    Volume reload, which fails while the build holds files open (its embedding cache)."""

    def __init__(self, directory: Path, read_committed: Callable[[Path], bytes | None] | None = None) -> None:
        self.directory = directory
        self._read_committed = read_committed or _read_local

    def write(self, result: ChunkResult) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"v_{digest}": np.asarray(m, dtype=np.float16) for digest, m in result.views.items()}
        failures = np.frombuffer(json.dumps(result.failures).encode(), dtype=np.uint8)
        partial = self.directory / f".{result.chunk_id}.{os.getpid()}.npz"
        save: Any = np.savez  # its stubs take the arrays' names as flags
        save(partial, failures=failures, **arrays)
        os.replace(partial, self.directory / f"{result.chunk_id}.npz")

    def read(self, chunk_id: str) -> ChunkResult | None:
        raw = self._read_committed(self.directory / f"{chunk_id}.npz")
        if raw is None:
            return None
        with np.load(io.BytesIO(raw)) as data:
            views = {k[2:]: data[k].astype(np.float32) for k in data.files if k.startswith("v_")}
            failures = json.loads(data["failures"].tobytes().decode())
        return ChunkResult(chunk_id, views, failures)

    def clear(self) -> None:
        for path in self.directory.glob("*.npz"):
            path.unlink(missing_ok=True)


def build_shards(
    data_dir: Path, model: str, read_committed: Callable[[Path], bytes | None] | None = None
) -> ChunkShards:
    """Where a build's chunk results wait for the build to read them (one folder per model)."""
    folder = hashlib.sha256(model.encode()).hexdigest()[:16]
    return ChunkShards(data_dir / "build_shards" / folder, read_committed)


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@dataclass
class ShardedExecutor:
    """Fans chunks out through ``map_chunks`` (e.g. Modal's ``.map`` over GPU containers, each
    writing its chunk's shard and answering its id, or an exception) and reads the shards back.
    Chunks whose shard already exists (a build that stopped half-way) are not embedded again.
    ``errors``: what the workers answered for chunks that failed (the build reports them)."""

    shards: ChunkShards
    map_chunks: Callable[[list[EmbedChunk]], Iterable[str | BaseException]]
    chunk_size: int = 256
    errors: list[str] = field(default_factory=list)

    def run(self, chunks: Sequence[EmbedChunk]) -> Iterator[ChunkResult]:
        self.errors.clear()
        todo = []
        for chunk in chunks:
            done = self.shards.read(chunk.chunk_id)
            if done is None:
                todo.append(chunk)
            else:
                yield done
        for answer in self.map_chunks(todo):
            if isinstance(answer, BaseException):
                log.warning("a chunk failed on its worker: %s", answer)
                self.errors.append(f"{type(answer).__name__}: {answer}")
                continue
            result = self.shards.read(answer)
            if result is None:
                self.errors.append(f"chunk {answer}: its shard is not in the committed Volume")
                continue
            yield result
