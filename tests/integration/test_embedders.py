"""Embedder backends: shapes, normalisation, ids, and OpenCLIP weights read from a local file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagematch.embedder import load_embedder
from imagematch.embedder.base import TorchEmbedder

pytestmark = pytest.mark.slow
IMAGES = [Image.new("RGB", (300, 200), (200, 10, 10)), Image.new("RGB", (64, 64), (0, 0, 200))]


@pytest.mark.parametrize(
    ("spec", "dim", "suffix"),
    [
        ("efficientnet:lite0", 1792, "/s288-crop/multilayer"),
        ("efficientnet:lite0@224/mean", 1280, "/s224-crop/mean"),
    ],
)
def test_efficientnet_gives_unit_vectors(spec: str, dim: int, suffix: str) -> None:
    embedder = load_embedder(spec, batch_size=1)
    vectors = embedder.embed(IMAGES)
    assert vectors.shape == (2, dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embedder_id.startswith("efficientnet-lite0@") and embedder.embedder_id.endswith(suffix)
    assert embedder.embed([]).shape == (0, dim)


def test_a_photo_gets_the_same_vector_alone_or_in_a_batch() -> None:
    """A worker embeds one photo at a time; a catalog build or ``eval`` embeds batches (their
    images preprocessed side by side): a photo's vector must not depend on which."""
    photos = [
        Image.effect_noise((348, 348), 40).convert("RGB"),
        Image.effect_noise((640, 480), 80).convert("RGB"),
        *IMAGES,
    ]
    embedder = load_embedder("efficientnet:lite0", batch_size=16)
    alone = np.concatenate([embedder.embed([photo]) for photo in photos])
    assert np.allclose(embedder.embed(photos), alone, atol=1e-5)


def test_efficientnet_input_is_the_weights_scale() -> None:
    """Pixels reach the model as (value - 127) / 128, channels first, the shorter side resized to
    the input size and centre-cropped: what every stored vector was made with."""
    embedder = load_embedder("efficientnet:lite0")
    assert isinstance(embedder, TorchEmbedder)
    tensor = embedder._preprocess(Image.new("RGB", (400, 300), (255, 127, 0)))
    assert tensor.shape == (3, 288, 288) and tensor.dtype == torch.float32
    assert torch.equal(tensor[:, 144, 144], torch.tensor([1.0, 0.0, -127 / 128]))


def test_fused_embedder_concatenates_its_parts() -> None:
    fused = load_embedder("tiny+tiny")
    assert fused.dim == 2 * load_embedder("tiny").dim and fused.embedder_id.count("+") == 1
    vectors = fused.embed(IMAGES)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_open_clip_loads_weights_from_a_local_file(tmp_path: Path) -> None:
    """No hub: random weights saved to a file, then loaded by path, give the same vectors."""
    random_init = load_embedder("open_clip:ViT-S-32/none", batch_size=2)
    assert isinstance(random_init, TorchEmbedder)
    weights = tmp_path / "vit-s-32-test.pt"
    torch.save(random_init._module.state_dict(), weights)
    from_file = load_embedder(f"open_clip:ViT-S-32/{weights}", batch_size=2)
    assert from_file.embedder_id == "open_clip-ViT-S-32@vit-s-32-test.pt/openclip-val"
    expected, actual = random_init.embed(IMAGES), from_file.embed(IMAGES)
    assert actual.shape == (2, random_init.dim) and np.allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize(
    "spec",
    [
        "open_clip:ViT-S-32",
        "resnet:50",
        "efficientnet:lite9",
        "efficientnet:lite0/gem",
        "efficientnet:lite0@9",
    ],
)
def test_bad_model_specs_fail_clearly(spec: str) -> None:
    with pytest.raises(ValueError):
        load_embedder(spec)


def test_open_clip_runs_the_same_catalog_recipe(tmp_path: Path, catalog_file: Path) -> None:
    """Views, whitening and centroids are embedder-agnostic: the production model builds and
    searches an index the same way (random weights here: only the plumbing is checked)."""
    from imagematch.app import build_services
    from imagematch.config import Settings
    from index_builder import rebuild_catalog_index

    settings = Settings(data_dir=tmp_path / "data", model="open_clip:ViT-S-32/none", batch_size=32)
    services = build_services(settings)
    try:
        index, report = rebuild_catalog_index(services, str(catalog_file))
        assert report.embedded == 8 and index.recipe["whitening"] == "product"
        assert index.projection.matrix is not None and index.projection.matrix.shape == (index.dim, index.dim)
        result = services.matcher.match_image(IMAGES[0])
        assert len(result.matches) == 4 and result.embedder_id.startswith("open_clip-ViT-S-32@none")
    finally:
        services.close()
