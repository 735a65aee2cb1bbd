"""Several embedders side by side: each part's vector, concatenated, as one descriptor.

``efficientnet:lite0@320+efficientnet:lite2@260`` is the offline "high quality" option: two models
see different things, and the catalog-fitted whitening learns how to weigh them. It costs the sum
of both models' time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from imagematch.embedder.base import Embedder, Vectors, l2_normalise

__all__ = ["FusedEmbedder"]


class FusedEmbedder:
    def __init__(self, parts: Sequence[Embedder]) -> None:
        if len(parts) < 2:
            raise ValueError("a fused embedder needs at least two parts")
        self.parts = list(parts)

    @property
    def embedder_id(self) -> str:
        return "+".join(part.embedder_id for part in self.parts)

    @property
    def dim(self) -> int:
        return sum(part.dim for part in self.parts)

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        return l2_normalise(np.concatenate([part.embed(images) for part in self.parts], axis=1))

    def to(self, device: str) -> None:
        for part in self.parts:
            move = getattr(part, "to", None)
            if move is not None:
                move(device)
