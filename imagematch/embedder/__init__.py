"""Embedders: one protocol, one backend per file. :func:`load_embedder` picks one from a spec."""

from __future__ import annotations

from pathlib import Path

from imagematch.embedder.absent import ModelNotLoaded
from imagematch.embedder.base import Embedder, StagedEmbedder, Vectors, as_staged, l2_normalise

__all__ = [
    "Embedder",
    "ModelNotLoaded",
    "StagedEmbedder",
    "Vectors",
    "as_staged",
    "l2_normalise",
    "load_embedder",
]


def load_embedder(
    spec: str, *, device: str = "cpu", batch_size: int = 16, cache_dir: Path | None = None
) -> Embedder:
    """Build an embedder from ``IMAGEMATCH_MODEL``-style specs.

    ``efficientnet:<lite0|lite1|lite2>[@<px>][/<multilayer|mean>]`` (offline default),
    ``open_clip:<arch>/<pretrained>`` (production), ``tiny`` (tests), or several joined by ``+``
    (their vectors concatenated). Raises ``ValueError`` for anything else.
    Backends are imported lazily so ``tiny`` never pays for torch model code.
    """
    if "+" in spec:
        from imagematch.embedder.fusion import FusedEmbedder

        return FusedEmbedder(
            [
                load_embedder(part, device=device, batch_size=batch_size, cache_dir=cache_dir)
                for part in spec.split("+")
            ]
        )
    family, _, rest = spec.partition(":")
    if family == "tiny":
        from imagematch.embedder.tiny import TinyEmbedder

        return TinyEmbedder()
    if family == "efficientnet":
        from imagematch.embedder.efficientnet import load_efficientnet

        return load_efficientnet(rest or "lite0", device=device, batch_size=batch_size)
    if family == "open_clip":
        from imagematch.embedder.open_clip import load_open_clip

        return load_open_clip(rest, cache_dir=cache_dir, device=device, batch_size=batch_size)
    raise ValueError(f"unknown model {spec!r}: use efficientnet:lite0, open_clip:<arch>/<pretrained> or tiny")
