"""A tiny deterministic embedder for fast tests: no weights, no torch, a colour/layout signature.

It is not meant to recognise products; it gives stable, distinct vectors for distinct images so the
index, the ledger and the API can be tested in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from imagematch.embedder.base import Vectors, l2_normalise

__all__ = ["TinyEmbedder"]


class TinyEmbedder:
    """Embeds an image as its 8×8 thumbnail in RGB (192 dims), mean-centred and normalised."""

    embedder_id = "tiny-rgb8x8@1"
    dim = 192

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        rows = []
        for image in images:
            thumb = np.asarray(
                image.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32
            )
            flat = thumb.reshape(-1) / 255.0
            rows.append(flat - flat.mean() + 1e-3)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.stack(rows).astype(np.float32))
