"""A product's vector: the catalog prototype alone without labels, a fixed blend with them."""

from __future__ import annotations

import numpy as np
import pytest

from imagematch.embedder.base import l2_normalise
from imagematch.index.scoring import LEARNED_WEIGHT, blended_prototype


def _rows(n: int, seed: int) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32))


def test_without_learned_references_the_vector_is_the_catalog_centroid_as_before() -> None:
    catalog = _rows(3, 0)
    expected = l2_normalise(catalog.mean(axis=0, keepdims=True))
    assert np.array_equal(blended_prototype(catalog, np.zeros((0, 8), np.float32)), expected)


def test_the_blend_does_not_depend_on_how_many_photos_were_learned() -> None:
    catalog, photo = _rows(3, 1), _rows(1, 2)
    once = blended_prototype(catalog, photo)
    many = blended_prototype(catalog, np.repeat(photo, 20, axis=0))
    assert np.allclose(once, many, atol=1e-6)
    assert np.linalg.norm(once) == pytest.approx(1.0, abs=1e-5)
    toward = float((once @ photo.T)[0, 0])
    assert float((blended_prototype(catalog, photo, learned_weight=0.0) @ photo.T)[0, 0]) < toward
    assert 0.0 < LEARNED_WEIGHT < 1.0


def test_learned_references_alone_make_the_vector_and_nothing_is_an_error() -> None:
    photos = _rows(2, 3)
    assert np.allclose(
        blended_prototype(np.zeros((0, 8), np.float32), photos), l2_normalise(photos.mean(0, keepdims=True))
    )
    with pytest.raises(ValueError):
        blended_prototype(np.zeros((0, 8), np.float32), np.zeros((0, 8), np.float32))
