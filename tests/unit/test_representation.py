from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagematch.models import CatalogViews, Whitening
from imagematch.representation import SHOOT_VIEWS, Projection, catalog_views, fit_projection, image_vector


def test_multi_views_are_fourteen_crops_and_mirrors_of_a_bounded_image() -> None:
    image = Image.new("RGB", (3000, 2000), "red")
    views = catalog_views(image, CatalogViews.MULTI)
    assert len(views) == 14
    assert views[0].size == (1152, 768)  # shorter side bounded to 768 before cropping
    assert views[1].size == views[0].size  # its mirror
    assert catalog_views(image, CatalogViews.SINGLE) == [image]


def test_shoot_views_add_reproducible_relit_copies_to_the_fourteen_framings() -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    views = catalog_views(image, CatalogViews.SHOOT)
    assert len(views) == 14 + SHOOT_VIEWS
    assert [v.tobytes() for v in views[:14]] == [
        v.tobytes() for v in catalog_views(image, CatalogViews.MULTI)
    ]
    again = catalog_views(image.copy(), CatalogViews.SHOOT)
    assert [v.tobytes() for v in views] == [v.tobytes() for v in again]  # same pixels, same views
    means = {round(float(np.asarray(v, dtype=np.float32).mean()), 1) for v in views[14:]}
    assert len(means) > SHOOT_VIEWS // 2  # the copies are re-lit differently
    assert all(v.mode == "RGB" for v in views)


def test_product_whitening_makes_within_product_spread_isotropic() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 8))
    # Within a product, pictures vary a lot along axis 0 and little elsewhere.
    noise = rng.normal(size=(20, 30, 8)) * np.array([5.0, *[0.1] * 7])
    views = (centres[:, None, :] + noise).reshape(-1, 8).astype(np.float32)
    groups = np.repeat(np.arange(20), 30)
    projection = fit_projection(views, groups, method=Whitening.PRODUCT, shrinkage=1e-4)
    assert projection.mean is not None and projection.matrix is not None
    white = (views - projection.mean) @ projection.matrix
    within = np.concatenate([white[groups == g] - white[groups == g].mean(0) for g in range(20)])
    spread = np.linalg.eigvalsh(np.cov(within.T))
    assert spread.max() / spread.min() < 1.5  # was 2500:1 before


def test_projection_round_trips_and_identity_passes_vectors_through(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    views = rng.normal(size=(60, 4)).astype(np.float32)
    projection = fit_projection(views, np.repeat(np.arange(6), 10), method=Whitening.IMAGE, shrinkage=0.3)
    projection.save(tmp_path / "p.npz")
    loaded = Projection.load(tmp_path / "p.npz")
    assert loaded.method is Whitening.IMAGE and loaded.shrinkage == pytest.approx(0.3)
    np.testing.assert_allclose(loaded.apply(views[:3]), projection.apply(views[:3]), rtol=1e-6)
    identity = fit_projection(views, np.zeros(60, dtype=np.int64), method=Whitening.NONE, shrinkage=0.3)
    identity.save(tmp_path / "i.npz")
    assert Projection.load(tmp_path / "i.npz").apply(views) is views
    np.testing.assert_allclose(np.linalg.norm(image_vector(views[:5])), 1.0, rtol=1e-6)
