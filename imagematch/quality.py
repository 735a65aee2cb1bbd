"""The quality tier: cheap signals on a decoded photo, a verdict and what to ask the customer for.

Every photo is still matched; a photo below the bar is flagged ``low_quality`` with human reasons,
so an agent (or the Zendesk note) can ask for a better one instead of trusting a confident-looking
wrong answer. The thresholds in :class:`QualityBar` were picked on the dev set: BENCHMARKS.md,
section "Photo quality tier" (``bench/photo_quality.py``). Pure: numpy and Pillow, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image
from pydantic import BaseModel

__all__ = [
    "ANALYSIS_SIDE",
    "QualityBar",
    "QualityReport",
    "QualitySignals",
    "assess_quality",
    "find_duplicate",
    "hash_distance",
    "measure_quality",
]

ANALYSIS_SIDE = 512  # signals are measured on a copy at most this large, so they do not depend on megapixels
_HASH_SIDE, _HASH_BITS = 32, 8  # pHash: 32×32 grey, the 8×8 lowest DCT frequencies → 64 bits


class QualitySignals(BaseModel):
    """What was measured. ``sharpness`` is the variance of the Laplacian of the grey picture
    (scaled to at most :data:`ANALYSIS_SIDE`); ``brightness`` the mean luminance 0–255;
    ``dark_share``/``bright_share`` the share of clipped pixels (≤ 8 or ≥ 247);
    ``phash`` a 64-bit perceptual hash (hex) for near-duplicates."""

    width: int
    height: int
    sharpness: float
    brightness: float
    dark_share: float
    bright_share: float
    phash: str


@dataclass(frozen=True)
class QualityBar:
    """Below any of these a photo is flagged. Defaults: BENCHMARKS.md "Photo quality tier"."""

    min_side: int = 224  # below the embedder's input: the photo gets upsampled, details are guessed
    # Chosen on the dev set's train split between its good photos and degraded copies of them
    # (BENCHMARKS.md "Photo quality tier"): ≤ 1 % of good photos flagged, ≥ 85 % of copies caught.
    min_sharpness: float = 31.3
    min_brightness: float = 49.8
    max_brightness: float = 150.2
    max_clipped_share: float = 0.0869
    duplicate_distance: int = 6  # pHash bits: ≤ this many differ = the same shot sent twice


class QualityReport(BaseModel):
    """The verdict stored with a prediction: ``low_quality`` with ``reasons`` (what is wrong) and
    ``advice`` (what to ask the customer for), plus the raw signals."""

    low_quality: bool
    reasons: list[str]
    advice: list[str]
    signals: QualitySignals
    duplicate_of: str | None = None  # an earlier photo of the same entity this one repeats


def measure_quality(image: Image.Image) -> QualitySignals:
    """The signals of an RGB picture (any size); never raises on a decodable image."""
    width, height = image.size
    grey = image.convert("L")
    if max(width, height) > ANALYSIS_SIDE:
        scale = ANALYSIS_SIDE / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = grey.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.float32)
    return QualitySignals(
        width=width,
        height=height,
        sharpness=round(_laplacian_variance(pixels), 2),
        brightness=round(float(pixels.mean()), 2),
        dark_share=round(float((pixels <= 8).mean()), 4),
        bright_share=round(float((pixels >= 247).mean()), 4),
        phash=_perceptual_hash(grey),
    )


def assess_quality(
    signals: QualitySignals, bar: QualityBar | None = None, *, earlier: dict[str, str] | None = None
) -> QualityReport:
    """Compare ``signals`` with ``bar``; ``earlier`` maps other photos of the same entity (by any
    id) to their pHash, and the first one within ``bar.duplicate_distance`` is ``duplicate_of``.
    A duplicate is reported, not flagged: the photo itself may be fine."""
    bar = bar or QualityBar()
    reasons: list[str] = []
    advice: list[str] = []
    if min(signals.width, signals.height) < bar.min_side:
        reasons.append(f"low resolution ({signals.width}×{signals.height} px)")
        advice.append("a closer photo at full resolution (not a thumbnail or a screenshot)")
    if signals.sharpness < bar.min_sharpness:
        reasons.append(f"blurry (sharpness {signals.sharpness:.0f}, bar {bar.min_sharpness:.0f})")
        advice.append("a sharper photo: hold the phone still and tap the product to focus")
    if signals.brightness < bar.min_brightness or signals.dark_share > bar.max_clipped_share:
        reasons.append(f"too dark (brightness {signals.brightness:.0f}/255)")
        advice.append("a brighter photo: more light on the product, no backlight")
    elif signals.brightness > bar.max_brightness or signals.bright_share > bar.max_clipped_share:
        reasons.append(f"overexposed (brightness {signals.brightness:.0f}/255)")
        advice.append("a photo without glare: no flash, out of direct light")
    duplicate = find_duplicate(signals.phash, earlier or {}, max_distance=bar.duplicate_distance)
    return QualityReport(
        low_quality=bool(reasons), reasons=reasons, advice=advice, signals=signals, duplicate_of=duplicate
    )


def find_duplicate(phash: str, earlier: Mapping[str, str], *, max_distance: int) -> str | None:
    """The first key of ``earlier`` (id → pHash) within ``max_distance`` bits of ``phash``."""
    return next((key for key, other in earlier.items() if hash_distance(phash, other) <= max_distance), None)


def hash_distance(a: str, b: str) -> int:
    """Differing bits between two hex perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _laplacian_variance(pixels: np.ndarray) -> float:
    if min(pixels.shape) < 3:
        return 0.0
    # Summed in place, in the order of up + down + left + right - 4 × centre: the same float32
    # values as the plain expression, without its four temporary arrays (it runs for every job).
    laplacian = pixels[:-2, 1:-1] + pixels[2:, 1:-1]
    laplacian += pixels[1:-1, :-2]
    laplacian += pixels[1:-1, 2:]
    laplacian -= 4 * pixels[1:-1, 1:-1]
    return float(laplacian.var())


@cache
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix: np.ndarray = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


def _perceptual_hash(grey: Image.Image) -> str:
    small = np.asarray(grey.resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.BOX), dtype=np.float64)
    dct = _dct_matrix(_HASH_SIDE)
    low = (dct @ small @ dct.T)[:_HASH_BITS, :_HASH_BITS].flatten()
    # The median of the 63 AC terms (the DC term would dominate it): an odd count, so the middle
    # one once sorted, as np.median finds it, at a tenth of its Python overhead.
    median = np.sort(low[1:])[(_HASH_BITS * _HASH_BITS - 1) // 2]
    return np.packbits(low > median).tobytes().hex()  # first coefficient → most significant bit
