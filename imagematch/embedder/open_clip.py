"""OpenCLIP image tower: the production embedder (GPU on Modal).

``open_clip:<arch>/<pretrained>`` where ``<pretrained>`` is an OpenCLIP pretrained tag (weights are
read from ``cache_dir``, which production keeps on the Modal Volume), a path to a weights file, or
``none`` for random weights (tests only: the architecture runs, the vectors mean nothing).
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from imagematch.embedder.base import TorchEmbedder

__all__ = ["load_open_clip", "parse_open_clip_spec"]


def parse_open_clip_spec(spec: str) -> tuple[str, str]:
    """Split ``arch/pretrained``; raises ``ValueError`` when either part is missing."""
    arch, sep, pretrained = spec.partition("/")
    if not sep or not arch or not pretrained:
        raise ValueError(f"OpenCLIP model must look like open_clip:<arch>/<pretrained>, got {spec!r}")
    return arch, pretrained


def load_open_clip(
    spec: str, *, cache_dir: Path | None = None, device: str = "cpu", batch_size: int = 16
) -> TorchEmbedder:
    """Build the OpenCLIP embedder on CPU first (so Modal can memory-snapshot it), then ``device``."""
    arch, pretrained = parse_open_clip_spec(spec)
    model, _, preprocess = open_clip.create_model_and_transforms(
        arch,
        pretrained=None if pretrained == "none" else pretrained,
        cache_dir=str(cache_dir) if cache_dir else None,
        device="cpu",
    )
    dim = int(model.visual.output_dim)
    weights = Path(pretrained).name if Path(pretrained).exists() else pretrained

    def forward(batch: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = model.encode_image(batch)
        return features

    return TorchEmbedder(
        embedder_id=f"open_clip-{arch}@{weights}/openclip-val",
        dim=dim,
        preprocess=preprocess,
        forward=forward,
        module=model,
        device=device,
        batch_size=batch_size,
    )
