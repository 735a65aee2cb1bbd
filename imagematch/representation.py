"""How catalog images become vectors a customer's photo can be compared with.

A photo from a store shelf or a customer's phone differs from the catalog's pictures in framing,
lighting and background. Two catalog-side steps close much of that gap; both are fitted on catalog
images only (never on queries), so they cost nothing per query:

* **Views** — each catalog image is embedded in several framings (the whole image, centre zooms,
  corner crops, each also mirrored) and the views are averaged: the image's vector then covers the
  crops a customer's photo may have.
* **Shoot-like views** (``shoot``) — the 14 framings plus copies of random framings re-lit, colour-cast,
  blurred, warped in perspective and re-compressed, as a new photo shoot would change them. A
  customer's photo differs from the catalog's in exactly these ways; the whitening fitted on them
  learns to ignore them. Each image's copies are drawn from a generator seeded by its pixels, so a
  rebuild makes the same vectors.
* **Projection** — a whitening fitted on those views. ``product`` whitening (a shrunk LDA /
  Mahalanobis metric) uses the covariance of views around their *product's* mean: the directions in
  which pictures of one product vary (lighting, angle, crop) are damped, the directions in which
  products differ are kept. ``image`` whitening uses each image as its own class (it learns only the
  crop/mirror variation; no product grouping is used). Shrinkage towards the mean eigenvalue keeps
  the fit stable with few images.

The index (:mod:`imagematch.index`) applies the projection to catalog and query vectors alike and
scores products by their centroid. Measurements: ``BENCHMARKS.md``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageFilter

from imagematch.embedder import Embedder, Vectors, l2_normalise
from imagematch.models import CatalogViews, Whitening

__all__ = [
    "SHOOT_VIEWS",
    "CatalogViews",
    "Projection",
    "Whitening",
    "catalog_views",
    "embed_catalog_images",
    "fit_projection",
    "image_vector",
    "shoot_view",
]

SHOOT_VIEWS = 6  # shoot-like copies per catalog image (CatalogViews.SHOOT), besides the 14 framings


def catalog_views(image: Image.Image, views: CatalogViews) -> list[Image.Image]:
    """The framings of ``image`` to embed for the catalog (see :class:`CatalogViews`)."""
    if views is CatalogViews.SINGLE:
        return [image]
    image = _bounded(image)
    framed = _framings(image)
    if views is CatalogViews.SHOOT:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "little"))
        framed += [shoot_view(framed[int(rng.integers(len(framed)))], rng) for _ in range(SHOOT_VIEWS)]
    return framed


def _framings(image: Image.Image) -> list[Image.Image]:
    """The 14 framings: full, 0.8 and 0.6 centre zooms, four 0.75 corner crops, each mirrored."""
    width, height = image.size
    boxes = [(0.0, 0.0, float(width), float(height))]
    for zoom in (0.8, 0.6):
        boxes.append(
            ((width - width * zoom) / 2, (height - height * zoom) / 2,
             (width + width * zoom) / 2, (height + height * zoom) / 2)
        )  # fmt: skip
    corner = 0.75
    for x, y in ((0, 0), (1, 0), (0, 1), (1, 1)):
        left, top = x * (width - width * corner), y * (height - height * corner)
        boxes.append((left, top, left + width * corner, top + height * corner))
    framed = []
    for box in boxes:
        crop = image.crop((round(box[0]), round(box[1]), round(box[2]), round(box[3])))
        framed += [crop, crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return framed


def shoot_view(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``image`` as another shoot might show it: brightness, contrast and saturation ±30-40 %, a
    colour cast of up to ±15 % per channel, sometimes a blur (σ 0.5-2 px) or a perspective warp
    (corners moved by up to 10 %), then JPEG at quality 30-90. Deterministic given ``rng``."""
    shot = ImageEnhance.Brightness(image.convert("RGB")).enhance(rng.uniform(0.6, 1.4))
    shot = ImageEnhance.Contrast(shot).enhance(rng.uniform(0.7, 1.3))
    shot = ImageEnhance.Color(shot).enhance(rng.uniform(0.6, 1.4))
    cast = np.asarray(shot, dtype=np.float32) * rng.uniform(0.85, 1.15, 3)
    shot = Image.fromarray(np.clip(cast, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        shot = shot.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    if rng.random() < 0.5:
        width, height = shot.size
        moved = np.array([0, 0, 0, height, width, height, width, 0], dtype=np.float64)
        moved += rng.uniform(-0.1, 0.1, 8) * np.array([width, height] * 4)
        quad = (*(float(v) for v in moved),)
        shot = shot.transform((width, height), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    shot.save(buffer, "JPEG", quality=int(rng.integers(30, 90)))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


VIEW_SOURCE_SIDE = 768  # the smallest view (a 0.6 zoom) still has a 460 px side: above any model input


def _bounded(image: Image.Image) -> Image.Image:
    """Shrink a large photo (shorter side to :data:`VIEW_SOURCE_SIDE`) so its 14 crops stay small."""
    scale = VIEW_SOURCE_SIDE / min(image.size)
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


@dataclass(frozen=True)
class Projection:
    """``x ↦ normalise((x − mean) · matrix)``; the identity when ``matrix`` is ``None``."""

    method: Whitening
    mean: Vectors | None = None
    matrix: Vectors | None = None
    shrinkage: float = 0.0

    @classmethod
    def identity(cls) -> Projection:
        return cls(Whitening.NONE)

    def apply(self, vectors: Vectors) -> Vectors:
        if self.matrix is None or self.mean is None:
            return vectors
        projected: Vectors = ((np.atleast_2d(vectors) - self.mean) @ self.matrix).astype(np.float32)
        return l2_normalise(projected)

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {"method": np.array(self.method.value)}
        arrays["shrinkage"] = np.array(self.shrinkage)
        if self.mean is not None and self.matrix is not None:
            arrays |= {"mean": self.mean, "matrix": self.matrix}
        with path.open("wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def load(cls, path: Path) -> Projection:
        with np.load(path) as data:
            method = Whitening(str(data["method"]))
            if "matrix" not in data:
                return cls(method)
            return cls(method, data["mean"], data["matrix"], float(data["shrinkage"]))


def fit_projection(
    views: Vectors, groups: Sequence[int] | NDArray[np.int64], *, method: Whitening, shrinkage: float
) -> Projection:
    """Fit a whitening on catalog view vectors; ``groups[i]`` is the class of ``views[i]``
    (its product for ``product`` whitening, its image for ``image`` whitening).

    ``W = C^(−1/2)`` of the within-class covariance ``C``, with ``shrinkage`` ∈ [0, 1] pulling its
    eigenvalues towards their mean (``(1−s)·λ + s·mean(λ)``), which keeps it well-posed when there
    are fewer views than dimensions.
    """
    if method is Whitening.NONE or len(views) < 2:
        return Projection.identity()
    if not 0.0 < shrinkage <= 1.0:
        raise ValueError("shrinkage must be in (0, 1]")
    data = np.asarray(views, dtype=np.float64)
    labels = np.asarray(groups)
    scatter = np.zeros((data.shape[1], data.shape[1]), dtype=np.float64)
    for label in np.unique(labels):
        members = data[labels == label]
        centred = members - members.mean(axis=0)
        scatter += centred.T @ centred
    eigenvalues, eigenvectors = np.linalg.eigh(scatter / len(data))
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    shrunk = (1.0 - shrinkage) * eigenvalues + shrinkage * eigenvalues.mean()
    matrix = eigenvectors / np.sqrt(np.maximum(shrunk, 1e-12))
    return Projection(
        method,
        data.mean(axis=0).astype(np.float32),
        matrix.astype(np.float32),
        shrinkage,
    )


def embed_catalog_images(
    embedder: Embedder, images: Sequence[Image.Image], views: CatalogViews
) -> list[Vectors]:
    """Embed each image's :func:`catalog_views` in one pass; returns one ``(views, dim)`` array per image."""
    framed = [catalog_views(image, views) for image in images]
    flat = [frame for frames in framed for frame in frames]
    vectors = embedder.embed(flat) if flat else np.zeros((0, embedder.dim), dtype=np.float32)
    bounds = np.cumsum([0, *(len(frames) for frames in framed)])
    return [vectors[start:end] for start, end in pairwise(bounds)]


def image_vector(view_vectors: Vectors) -> Vectors:
    """One image's vector: the normalised mean of its view vectors."""
    mean: Vectors = np.asarray(view_vectors, dtype=np.float32).mean(axis=0, keepdims=True)
    normalised: Vectors = l2_normalise(mean)[0]
    return normalised
