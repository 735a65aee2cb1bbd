"""The :class:`Embedder` protocol and the torch plumbing its backends share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

__all__ = ["Embedder", "StagedEmbedder", "TorchEmbedder", "Vectors", "as_staged", "l2_normalise"]

Vectors = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns RGB images into L2-normalised float32 vectors.

    ``embedder_id`` names the model, its weights and its preprocessing: two embedders with the same
    id produce interchangeable vectors, so it is recorded with every vector and every snapshot.
    """

    @property
    def embedder_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        """Embed catalog or query images (RGB); returns an ``(n, dim)`` array, rows of norm 1."""
        ...


@runtime_checkable
class StagedEmbedder(Embedder, Protocol):
    """An embedder whose CPU preprocessing can run apart from its forward pass: a worker prepares
    each job's image in its pool (``prepare``, thread-safe) while the model runs the previous
    batch, then embeds a batch of prepared images in one forward pass (``embed_prepared``).
    ``embed_prepared([prepare(im) for im in images])`` equals ``embed(images)``."""

    def prepare(self, image: Image.Image) -> Any: ...

    def embed_prepared(self, prepared: Sequence[Any]) -> Vectors: ...


def as_staged(embedder: Embedder) -> StagedEmbedder | None:
    """``embedder`` when it is a :class:`StagedEmbedder`, checked by its methods: ``isinstance``
    on a runtime protocol costs ~20 µs of Python under the GIL, and a worker asks for every job."""
    if callable(getattr(embedder, "prepare", None)) and callable(getattr(embedder, "embed_prepared", None)):
        return cast(StagedEmbedder, embedder)
    return None


def l2_normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


class TorchEmbedder:
    """Batches images through ``preprocess`` then ``forward`` under ``torch.inference_mode()``.

    Backends supply the model (``forward`` maps a batch tensor to ``(n, dim)`` features) and the
    per-image ``preprocess``; this class owns batching, device placement and normalisation.
    """

    def __init__(
        self,
        *,
        embedder_id: str,
        dim: int,
        preprocess: Callable[[Image.Image], torch.Tensor],
        forward: Callable[[torch.Tensor], torch.Tensor],
        module: torch.nn.Module,
        device: str = "cpu",
        batch_size: int = 16,
    ) -> None:
        self._embedder_id = embedder_id
        self._dim = dim
        self._preprocess = preprocess
        self._forward = forward
        self._module = module.eval()
        self._device = torch.device(device)
        self._batch_size = batch_size
        self._module.to(self._device)
        self._pool: ThreadPoolExecutor | None = None  # preprocesses a batch's images side by side
        self._pool_lock = threading.Lock()

    @property
    def embedder_id(self) -> str:
        return self._embedder_id

    @property
    def dim(self) -> int:
        return self._dim

    def to(self, device: str) -> None:
        """Move the model, e.g. to the GPU after a CPU memory snapshot was restored."""
        self._device = torch.device(device)
        self._module.to(self._device)

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        chunks = [
            self.embed_prepared(self._preprocess_all(images[start : start + self._batch_size]))
            for start in range(0, len(images), self._batch_size)
        ]
        return np.concatenate(chunks, axis=0) if chunks else np.zeros((0, self._dim), dtype=np.float32)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """``image`` as the model's input tensor (CPU work: resize, crop, normalise)."""
        return self._preprocess(image)

    def embed_prepared(self, prepared: Sequence[torch.Tensor]) -> Vectors:
        """Vectors of images already :meth:`prepare`-d, ``batch_size`` per forward pass."""
        if not prepared:
            return np.zeros((0, self._dim), dtype=np.float32)
        chunks: list[Vectors] = []
        with torch.inference_mode():
            for start in range(0, len(prepared), self._batch_size):
                tensors = prepared[start : start + self._batch_size]
                # One photo needs no copy: stacking runs a parallel torch op.
                batch = tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(list(tensors))
                features = self._forward(batch.to(self._device)).float().cpu().numpy()
                chunks.append(features.astype(np.float32))
        return l2_normalise(np.concatenate(chunks, axis=0))

    def _preprocess_all(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """Each image preprocessed, several at once when there are several: resizing is most of it
        and Pillow resizes without the GIL, so a batch's images use the cores torch's forward pass
        uses next (same tensors; measured in bench/pipeline_throughput.py)."""
        threads = torch.get_num_threads()
        if len(images) < 2 or threads < 2:
            return [self._preprocess(im) for im in images]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(threads, thread_name_prefix="preprocess")
        return list(self._pool.map(self._preprocess, images))
